"""Does an ETL output fit a training config? Checked from the trajectories' manifest, before training.

The manifest's dataset contract says which state columns, actions and dose columns the folder
has; the training config says which it needs. A mismatch is bad input (exit 2) found in a second,
not an error after minutes of ETL and a crash inside the learner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from dosewise.data_schemas import ConfigError, RunManifest

CONTINUOUS = ("cql", "iql", "td3_plus_bc")


def check_training_fits(trajectories_dir: Path, train: Any) -> None:
    """Raise ConfigError when the trajectories cannot feed `train` (features, action space, split)."""
    manifest = RunManifest.read(Path(trajectories_dir))
    info = manifest.dataset
    if info is None:
        raise ConfigError(f"{trajectories_dir} has no dataset contract in its manifest.",
                          "Point the pipeline at a trajectories folder written by a Dosewise ETL.")
    hint = "Change the training config's `features` / algorithm, or the ETL config, so that they agree."
    missing = [f for f in train.features or [] if f not in info.state_columns]
    if missing:
        raise ConfigError(f"`train.features` must be state columns of the ETL output "
                          f"({len(info.state_columns)} columns, e.g. {', '.join(info.state_columns[:4])}). "
                          f"Got unknown {missing[:5]}.", hint)
    if train.algorithm.name in CONTINUOUS and not info.continuous_action_columns:
        raise ConfigError(f"`train.algorithm.name` {train.algorithm.name!r} needs dose columns, and the "
                          "ETL output has none (continuous_action_columns is empty).", hint)
    bad = [a for a in train.mask.forbidden_actions if not 0 <= a < info.n_actions]
    if bad:
        raise ConfigError(f"`train.mask.forbidden_actions` must lie in [0, {info.n_actions - 1}] (the ETL's "
                          f"{info.n_actions} actions). Got {bad}.", hint)
    splits = pd.read_parquet(Path(trajectories_dir) / "splits.parquet", columns=["split"])
    if not (splits["split"] == train.split).any():
        raise ConfigError(f"`train.split` {train.split!r} must have episodes in the ETL output. Got none "
                          f"(splits: {', '.join(sorted(splits['split'].unique()))}).",
                          "Train on a split the ETL writes, or change the ETL's split fractions.")
