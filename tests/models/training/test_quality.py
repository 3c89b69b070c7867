"""Ground truth: a small-budget DiscreteCQL policy beats the clinicians on the ICU-Sepsis MDP,
measured exactly (dynamic programming on the MDP's matrices, not estimated)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dosewise.models import TrainConfig, load_policy, train_policy


def exact_survival(policy_dir: Path) -> float:
    """Exact survival probability of a saved policy's greedy actions in the ICU-Sepsis MDP."""
    from dosewise.pipelines.simulators.icu_sepsis import (
        FEATURE_NAMES,
        exact_policy_value,
        load_icu_sepsis_mdp,
    )

    mdp = load_icu_sepsis_mdp()
    states = pd.DataFrame(mdp.state_features[mdp.non_terminal], columns=list(FEATURE_NAMES))
    probs = load_policy(policy_dir).action_probabilities(states, epsilon=0.0)
    return exact_policy_value(probs, mdp)


@pytest.mark.slow
def test_small_budget_discrete_cql_beats_the_clinicians(icu_dir: Path, tmp_path: Path) -> None:
    from dosewise.pipelines.simulators.icu_sepsis import exact_policy_value, load_icu_sepsis_mdp

    clinicians = exact_policy_value(load_icu_sepsis_mdp().clinician_policy)
    assert clinicians == pytest.approx(0.782, abs=1e-3)
    config = TrainConfig.model_validate({
        "device": "cpu", "seed": 0, "threads": 1, "n_steps": 2000, "log_every": 500, "batch_size": 256,
        "algorithm": {"name": "discrete_cql"},
    })
    result = train_policy(icu_dir, config, out_dir=tmp_path / "cql", show_progress=False)
    value = exact_survival(result.policy_dir)
    assert value > clinicians, (value, clinicians)
    assert np.isfinite(result.metrics["train/td_loss"])
