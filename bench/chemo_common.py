"""Shared pieces of the chemotherapy benchmarks: simulate -> ETL -> trajectories, train a policy
with a shipped `chemo_*` config, and wrap a Dosewise policy (continuous or on the RDI bins) for the
simulator's Monte-Carlo truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dosewise.data_schemas import columns as c
from dosewise.data_schemas import load_config
from dosewise.models import TrainConfig, config_folder, load_policy, train_policy
from dosewise.pipelines import (
    BinDeliveredAsClinicians,
    ChemoPipelineConfig,
    DeliveredAsClinicians,
    policy_from_function,
    run_chemo_pipeline,
    write_synthetic_oncology,
)

RDI = c.RDI_FRACTION
SPLITS = (0.5, 0.05, 0.45)  # train (behaviour model, FQE) / validation / test (evaluated)
# Loss to follow-up handled by inverse probability of censoring weights (pooled Kaplan-Meier G), so
# the logged returns estimate the full-outcome value that `true_policy_value` computes.
CENSORING = "ipcw_km"
# The ETL's split permutation must not share its seed with the simulator: `default_rng(seed)` drives
# both the patients' draws and `assign_splits`, and with one seed the test split was the worse-outcome
# part of every cohort (6 of 6 replications, by 0.03 on average; a bias of the bench, not of OPE).
SPLIT_SEED_OFFSET = 1_000_003


def chemo_trajectories(root: Path, n_patients: int, seed: int) -> Path:
    """Simulate `n_patients` under the clinicians' policy and run `etl chemo` on the records."""
    source, out = root / f"records_{seed}", root / f"trajectories_{seed}"
    write_synthetic_oncology(source, n_patients, seed=seed, fmt="registry", file_format="parquet")
    config = ChemoPipelineConfig.model_validate(
        {"seed": seed + SPLIT_SEED_OFFSET,
         "output": {"split_fractions": list(SPLITS), "id_salt": "dosewise-bench-salt"},
         "reward": {"censoring": CENSORING, "censoring_strata": "none"}})
    run_chemo_pipeline(config, source, out, show_progress=False)
    return out


def train_chemo(trajectories: Path, config_name: str, out: Path, n_steps: int | None, seed: int = 0,
                overrides: list[str] | None = None) -> Any:
    """Train with a shipped chemo config on CPU (plus `overrides`, `key=value`); returns the loaded policy."""
    steps = [f"n_steps={n_steps}"] if n_steps else []
    overrides = ["device=cpu", f"seed={seed}", "threads=1", *steps, *(overrides or [])]
    config = load_config(config_name, TrainConfig, overrides, search=[config_folder()])
    result = train_policy(trajectories, config, out_dir=out, show_progress=False)
    return load_policy(result.policy_dir)


def simulator_policy(policy: Any, delivery: str = "on_schedule") -> Any:
    """A Dosewise policy as a simulator `CyclePolicy`: its recommended RDI, either given on
    schedule (`on_schedule`: that dose fraction, no delay) or delivered the way the clinicians
    deliver that RDI (`as_clinicians`: dose level and delay drawn as in their records, the
    estimand of off-policy estimates on the RDI action; see `DeliveredAsClinicians`)."""

    def doses(states: pd.DataFrame) -> np.ndarray:
        if not len(states):
            return np.zeros(0)
        frame = states[list(policy.feature_names)].astype(np.float64)
        return np.clip(policy.recommend_doses(frame)[RDI].to_numpy(np.float64), 0.0, None)

    if delivery == "as_clinicians":
        return DeliveredAsClinicians(doses)
    if delivery != "on_schedule":
        raise ValueError(f"delivery must be on_schedule or as_clinicians. Got {delivery!r}.")
    return policy_from_function(doses)


def simulator_bin_policy(policy: Any, edges: list[float], epsilon: float) -> BinDeliveredAsClinicians:
    """A discrete Dosewise policy (one action per RDI bin of `edges`) as a simulator `CyclePolicy`
    whose value is the estimand of discrete-action OPE: the bin drawn from the policy's
    `epsilon`-greedy probabilities (as `evaluate_policy` softens it, `OpeConfig.epsilon`), the dose
    and delay drawn as the clinicians deliver an RDI in that bin (see `BinDeliveredAsClinicians`)."""
    if policy.n_actions != len(edges) + 1:
        raise ValueError(f"Policy `{policy.name}` has {policy.n_actions} actions but the RDI edges {edges} "
                         f"make {len(edges) + 1} bins; train it on trajectories with these edges.")

    def probs(states: pd.DataFrame) -> np.ndarray:
        frame = states[list(policy.feature_names)].astype(np.float64)
        return np.asarray(policy.action_probabilities(frame, epsilon), dtype=np.float64)

    return BinDeliveredAsClinicians(probs, tuple(float(e) for e in edges))
