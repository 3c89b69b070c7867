"""Fixtures of the training tests: tiny trajectories folders (builders) and ICU-Sepsis episodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dosewise.data_schemas import RunManifest, TrajectoryDatasetInfo, write_table_atomic
from dosewise.data_schemas import columns as c
from tests.builders import make_info, make_trajectories

FLUID_EDGES = [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]
VASO_EDGES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


def binned_trajectories(
    n_episodes: int = 24, steps: int = 5, n_states: int = 4, seed: int = 0
) -> pd.DataFrame:
    """Builder trajectories whose `action` is the 5 x 5 bin of their doses (as an ETL writes them)."""
    frame = make_trajectories(n_episodes=n_episodes, steps=steps, n_states=n_states, seed=seed)
    fluid = np.clip(np.searchsorted(FLUID_EDGES[1:-1], frame[c.FLUID_ML_4H], side="right"), 0, 4)
    vaso = np.clip(np.searchsorted(VASO_EDGES[1:-1], frame[c.NOREPI_EQ_MCG_KG_MIN], side="right"), 0, 4)
    frame[c.ACTION] = (fluid * 5 + vaso).astype("int64")
    return frame


def binned_info(n_states: int = 4) -> TrajectoryDatasetInfo:
    """The contract of `binned_trajectories`: 5 x 5 grid and the bin edges of both doses."""
    return make_info(n_states=n_states).model_copy(update={
        "action_grid": [5, 5],
        "action_bin_edges": {c.FLUID_ML_4H: FLUID_EDGES, c.NOREPI_EQ_MCG_KG_MIN: VASO_EDGES},
    })


def write_folder(
    folder: Path, frame: pd.DataFrame, info: TrajectoryDatasetInfo, *, manifest: bool = True
) -> Path:
    """A trajectories folder (70/15/15 episode split) with its manifest written last."""
    episodes = sorted(frame[c.EPISODE_ID].unique())
    n = len(episodes)
    n_train, n_val = max(1, int(0.7 * n)), max(1, int(0.15 * n))
    split = ["train"] * n_train + ["validation"] * n_val + ["test"] * (n - n_train - n_val)
    write_table_atomic(frame, folder / "trajectories.parquet")
    write_table_atomic(pd.DataFrame({c.EPISODE_ID: episodes, c.SPLIT: split}), folder / "splits.parquet")
    if manifest:
        RunManifest.start("test_trajectories", {"kind": "test"}, dataset=info).write(folder)
    return folder


@pytest.fixture
def traj_dir(tmp_path: Path) -> Path:
    """24 episodes x 5 steps, 4 state features, doses and their 5 x 5 bins."""
    return write_folder(tmp_path / "traj", binned_trajectories(), binned_info())


@pytest.fixture(scope="session")
def icu_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5,000 ICU-Sepsis episodes under the clinicians' policy (a few seconds to simulate)."""
    from dosewise.pipelines.simulators.icu_sepsis_episodes import write_icu_sepsis_episodes

    folder = tmp_path_factory.mktemp("icu") / "episodes"
    write_icu_sepsis_episodes(folder, 5000, "clinician", seed=0)
    return folder


def tiny_config(algo: str = "discrete_cql", **fields: object):  # type: ignore[no-untyped-def]
    """A few CPU steps of `algo` with small networks."""
    from dosewise.models import TrainConfig

    data = {"n_steps": 20, "log_every": 10, "batch_size": 32, "device": "cpu", "seed": 0,
            "algorithm": {"name": algo, "hidden_units": [16, 16]}}
    data.update(fields)
    return TrainConfig.model_validate(data)
