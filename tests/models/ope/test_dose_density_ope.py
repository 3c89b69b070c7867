"""OPE on trajectories with continuous doses: behaviour probabilities from the dose density."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dosewise.data_schemas import BadInputError, RunManifest, TrajectoryDatasetInfo, write_table_atomic
from dosewise.models import OpeConfig, evaluate_policy, load_behaviour_model
from dosewise.models.behaviour_density import BehaviourDoseDensity

EDGES = {"fluid_ml_4h": [0.0, 100.0, 300.0, 800.0], "norepi_eq_mcg_kg_min": [0.0, 0.05, 0.15, 0.4]}
STATES = ["sofa_24h", "lactate_mmol_l"]


class UniformPolicy:
    """A stochastic policy over 25 actions (the random target); follows the Policy protocol."""

    name = "uniform"
    n_actions = 25
    action_space = "discrete"

    def __init__(self) -> None:
        self.feature_names = list(STATES)
        self.dose_columns: list[str] = []

    def q_values(self, states: pd.DataFrame) -> np.ndarray:
        return np.zeros((len(states), 25))

    def recommend(self, states: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(states), dtype=np.int64)

    def recommend_doses(self, states: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(index=states.index)

    def action_probabilities(self, states: pd.DataFrame, epsilon: float = 0.0) -> np.ndarray:
        return np.full((len(states), 25), 1 / 25)


def _write_folder(folder: Path, n_episodes: int = 300, steps: int = 4, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n = n_episodes * steps
    x = rng.normal(size=(n, 2))
    fluid = np.where(rng.random(n) < 0.6, np.exp(5.5 + 0.5 * x[:, 0] + 0.4 * rng.normal(size=n)), 0.0)
    vaso = np.where(rng.random(n) < 0.3, np.exp(-2.0 + 0.3 * x[:, 1] + 0.5 * rng.normal(size=n)), 0.0)
    bins = [np.searchsorted(EDGES[c], d, side="left") for c, d in (("fluid_ml_4h", fluid),
                                                                   ("norepi_eq_mcg_kg_min", vaso))]
    step = np.tile(np.arange(steps), n_episodes)
    last = step == steps - 1
    frame = pd.DataFrame({
        "episode_id": np.repeat([f"e{i:04d}" for i in range(n_episodes)], steps),
        "step": step.astype(np.int64),
        "bin_start": pd.Timestamp("2150-01-01") + pd.to_timedelta(4 * step, unit="h"),
        "sofa_24h": x[:, 0], "lactate_mmol_l": x[:, 1],
        "fluid_ml_4h": fluid, "norepi_eq_mcg_kg_min": vaso,
        "action": (bins[0] * 5 + bins[1]).astype(np.int64),
        "reward": np.where(last, rng.integers(0, 2, n).astype(float), 0.0),
        "terminal": last, "timeout": np.zeros(n, dtype=bool),
    })
    frame["bin_start"] = frame["bin_start"].astype("datetime64[ns]")
    ids = frame["episode_id"].unique()
    halves = np.where(np.arange(len(ids)) % 2 == 0, "train", "test")
    splits = pd.DataFrame({"episode_id": ids, "split": halves})
    info = TrajectoryDatasetInfo(state_columns=STATES, n_actions=25, action_grid=[5, 5],
                                 continuous_action_columns=list(EDGES), action_bin_edges=EDGES)
    write_table_atomic(frame, folder / "trajectories.parquet")
    write_table_atomic(splits, folder / "splits.parquet")
    RunManifest.start("test_trajectories", {"kind": "test"}, dataset=info).write(folder)


def test_dose_density_supplies_the_behaviour_probabilities(tmp_path: Path) -> None:
    _write_folder(tmp_path / "data")
    config = OpeConfig.model_validate({"n_bootstrap": 200, "fqe": {"enabled": False},
                                       "behaviour": {"model": "dose_density"}})
    report = evaluate_policy(tmp_path / "data", UniformPolicy(), config, out_dir=tmp_path / "out",
                             show_progress=False)
    assert report.behaviour.source == "fitted_classifier"
    assert "dose density" in report.behaviour.estimator
    assert report.behaviour.heldout_ece < 0.1
    assert isinstance(load_behaviour_model(tmp_path / "out" / "behaviour_model.joblib"), BehaviourDoseDensity)
    wis = report.estimate("WIS", "uniform")
    assert 0.0 <= wis.value <= 1.0 and wis.ci_low <= wis.ci_high


def test_dose_density_needs_dose_columns(tmp_path: Path) -> None:
    from dosewise.pipelines import write_icu_sepsis_episodes
    from tests.models.ope.tabular_policy import TabularPolicy

    write_icu_sepsis_episodes(tmp_path / "sim", 40, seed=0)
    config = OpeConfig.model_validate({"n_bootstrap": 50, "fqe": {"enabled": False},
                                       "behaviour": {"model": "dose_density"}})
    with pytest.raises(BadInputError, match="dose_density"):
        evaluate_policy(tmp_path / "sim", TabularPolicy("random", np.full((716, 25), 0.04)), config,
                        out_dir=tmp_path / "out")
