"""Every algorithm fits a few steps on tiny data, saves, loads and answers the Policy protocol."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dosewise.data_schemas import load_config
from dosewise.models import Policy, TrainConfig, config_folder, config_kinds, load_policy, train_policy
from dosewise.models.algorithms import ALGORITHMS, CONTINUOUS_ALGORITHMS, DISCRETE_ALGORITHMS

from .conftest import tiny_config

D3RLPY_ALGORITHMS = DISCRETE_ALGORITHMS + CONTINUOUS_ALGORITHMS  # pessimistic_mbp: test_planning.py


def _check_policy(policy: Policy, states: pd.DataFrame, algo: str) -> None:
    assert isinstance(policy, Policy)
    assert policy.name == algo
    assert policy.action_space == ("continuous" if algo in CONTINUOUS_ALGORITHMS else "discrete")
    actions = policy.recommend(states)
    assert actions.dtype == np.int64 and actions.shape == (len(states),)
    assert ((actions >= 0) & (actions < policy.n_actions)).all()
    q = policy.q_values(states)
    assert q.shape == (len(states), 25) and np.isfinite(q).all()
    probs = policy.action_probabilities(states, epsilon=0.1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert (probs[np.arange(len(states)), actions] >= 0.9).all()
    doses = policy.recommend_doses(states)
    assert list(doses.columns) == policy.dose_columns == ["fluid_ml_4h", "norepi_eq_mcg_kg_min"]
    assert (doses.to_numpy() >= 0).all() and doses.index.equals(states.index)


@pytest.mark.parametrize("algo", D3RLPY_ALGORITHMS)
def test_every_algorithm_fits_saves_and_loads_on_cpu(algo: str, traj_dir: Path, tmp_path: Path) -> None:
    result = train_policy(traj_dir, tiny_config(algo), out_dir=tmp_path / algo, show_progress=False)
    assert result.device == "cpu:0"
    assert {"step", "train/updates_per_s"} <= set(result.history[-1])
    assert len(result.history) == 2  # 20 steps logged every 10
    assert (result.policy_dir / "manifest.json").is_file() and (result.policy_dir / "metrics.csv").is_file()
    states = pd.read_parquet(traj_dir / "trajectories.parquet").head(7)
    loaded = load_policy(result.policy_dir)
    _check_policy(loaded, states, algo)
    if algo in CONTINUOUS_ALGORITHMS:
        # the doses were binned exactly by the manifest's edges, so the projection agrees everywhere
        assert result.metrics["data/bin_projection_agreement"] == 1.0


@pytest.mark.gpu
@pytest.mark.parametrize("algo", D3RLPY_ALGORITHMS)
def test_every_algorithm_fits_on_gpu(algo: str, traj_dir: Path, tmp_path: Path) -> None:
    config = tiny_config(algo).model_copy(update={"device": "cuda"})
    result = train_policy(traj_dir, config, out_dir=tmp_path / algo, show_progress=False)
    assert result.device.startswith("cuda")
    states = pd.read_parquet(traj_dir / "trajectories.parquet").head(7)
    gpu_policy = load_policy(result.policy_dir, device="cuda")
    cpu_policy = load_policy(result.policy_dir, device="cpu")
    np.testing.assert_array_equal(gpu_policy.recommend(states), cpu_policy.recommend(states))


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_shipped_config_per_algorithm(algo: str) -> None:
    config = load_config(algo, TrainConfig, search=[config_folder()])
    assert config.algorithm.name == algo and config.kind == "train"
    assert config_kinds()["train"] is TrainConfig


def test_settings_keep_d3rlpy_defaults_unless_documented() -> None:
    from d3rlpy.algos import CQLConfig, IQLConfig, TD3PlusBCConfig

    from dosewise.models.algorithms import CQLSettings, IQLSettings, TD3PlusBCSettings

    for ours, theirs in ((CQLSettings(), CQLConfig()), (IQLSettings(), IQLConfig()),
                         (TD3PlusBCSettings(), TD3PlusBCConfig())):
        converted = ours.to_d3rlpy(batch_size=theirs.batch_size)
        for f in dataclasses.fields(theirs):
            if f.name.endswith("_factory"):
                continue
            assert getattr(converted, f.name) == getattr(theirs, f.name), f.name


def test_every_setting_is_documented() -> None:
    from dosewise.models.config import MaskConfig

    settings = [type(load_config(a, TrainConfig, search=[config_folder()]).algorithm) for a in ALGORITHMS]
    for model in (TrainConfig, MaskConfig, *settings):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
