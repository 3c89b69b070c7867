"""Tiny synthetic frames for tests (d3rlpy testing_utils style)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dosewise.data_schemas import TrajectoryDatasetInfo
from dosewise.data_schemas import columns as c


def make_trajectories(
    n_episodes: int = 4, steps: int = 3, n_states: int = 2, seed: int = 0, n_actions: int = 25
) -> pd.DataFrame:
    """Valid trajectories: each episode ends terminal (even ids) or timeout (odd ids)."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n_episodes):
        for t in range(steps):
            last = t == steps - 1
            row = {
                c.EPISODE_ID: f"ep{e:03d}",
                c.STEP: t,
                c.BIN_START: pd.Timestamp("2150-01-01") + pd.Timedelta(hours=4 * t),
                c.ACTION: int(rng.integers(0, n_actions)),
                c.REWARD: 1.0 if last and e % 2 == 0 else 0.0,
                c.TERMINAL: last and e % 2 == 0,
                c.TIMEOUT: last and e % 2 == 1,
                c.FLUID_ML_4H: float(rng.uniform(0, 1000)),
                c.NOREPI_EQ_MCG_KG_MIN: float(rng.uniform(0, 0.5)),
            }
            for s in range(n_states):
                row[f"state_{s}"] = float(rng.normal())
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame[c.BIN_START] = frame[c.BIN_START].astype("datetime64[ns]")
    return frame


def make_info(n_states: int = 2, n_actions: int = 25) -> TrajectoryDatasetInfo:
    """The dataset contract matching `make_trajectories`."""
    return TrajectoryDatasetInfo(
        state_columns=[f"state_{s}" for s in range(n_states)],
        n_actions=n_actions,
        continuous_action_columns=[c.FLUID_ML_4H, c.NOREPI_EQ_MCG_KG_MIN],
        bin_hours=4,
    )
