"""Pessimistic model-based planning: the Policy protocol, the pessimism, and a ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dosewise.models import TrainConfig, load_policy, train_policy
from dosewise.models.planning import PlannedPolicy, plan

from .test_algorithms import _check_policy


def test_plans_saves_loads_and_answers_the_policy_protocol(traj_dir: Path, tmp_path: Path) -> None:
    config = TrainConfig.model_validate({"device": "cpu",
                                         "algorithm": {"name": "pessimistic_mbp", "min_count": 1}})
    result = train_policy(traj_dir, config, out_dir=tmp_path / "mbp", show_progress=False)
    assert (result.policy_dir / "q_table.npz").is_file() and not (result.policy_dir / "model.pt").exists()
    assert result.metrics["train/clusters"] > 0
    policy = load_policy(result.policy_dir)
    assert isinstance(policy, PlannedPolicy)
    _check_policy(policy, pd.read_parquet(traj_dir / "trajectories.parquet").head(7), "pessimistic_mbp")


def test_count_penalty_prefers_the_well_seen_action() -> None:
    counts = np.array([[100.0, 5.0]])  # one cluster; every transition ends the episode
    reward, moves, allowed = np.array([[0.5, 0.9]]), np.zeros((1, 2, 1)), np.ones((1, 2), bool)
    assert plan(counts, reward, moves, allowed, 0.99, 0.0, 10).argmax() == 1  # the greedy pick
    assert plan(counts, reward, moves, allowed, 0.99, 2.0, 10).argmax() == 0  # 0.9 seen 5 times: too unsure
    allowed[0, 0] = False
    assert plan(counts, reward, moves, allowed, 0.99, 2.0, 10).argmax() == 1  # masked actions never win


def test_beats_the_clinicians_on_icu_sepsis(icu_dir: Path, tmp_path: Path) -> None:
    from dosewise.pipelines.simulators.icu_sepsis import exact_policy_value, load_icu_sepsis_mdp

    config = TrainConfig.model_validate({"device": "cpu",
                                         "algorithm": {"name": "pessimistic_mbp", "gamma": 1.0}})
    trained = train_policy(icu_dir, config, out_dir=tmp_path / "p", show_progress=False)
    policy = load_policy(trained.policy_dir)
    mdp = load_icu_sepsis_mdp()
    states = pd.DataFrame(mdp.state_features, columns=policy.feature_names)
    value = exact_policy_value(policy.action_probabilities(states, 0.0), mdp)
    assert value > exact_policy_value(mdp.clinician_policy, mdp) + 0.005  # 3,500 train episodes: 0.789
