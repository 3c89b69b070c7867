"""Trajectories -> d3rlpy data: terminals vs timeouts, train-only scaling, dose scaling, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dosewise.data_schemas import IncompleteOutput, SchemaViolation
from dosewise.data_schemas import columns as c
from dosewise.models import load_training_data, to_mdp_dataset

from .conftest import binned_info, binned_trajectories, write_folder


def test_terminals_and_timeouts_stay_distinct(traj_dir: Path) -> None:
    data = load_training_data(traj_dir)
    dataset = to_mdp_dataset(traj_dir)
    frame = data.frame
    last = frame.groupby(c.EPISODE_ID)[c.STEP].transform("max") == frame[c.STEP]
    assert dataset.size() == frame[c.EPISODE_ID].nunique()
    terminated = sorted(bool(e.terminated) for e in dataset.episodes)
    assert terminated == sorted(frame.loc[last, c.TERMINAL].tolist())
    assert data.stats["n_terminal_episodes"] + data.stats["n_timeout_episodes"] == dataset.size()
    # a timeout's last step has no next state: d3rlpy drops it, and so does the vectorised sampler
    transitions = data.transitions()
    assert len(transitions) == dataset.transition_count == len(frame) - data.stats["n_timeout_episodes"]
    assert transitions.terminals.sum() == data.stats["n_terminal_episodes"]
    np.testing.assert_array_equal(transitions.next_observations[transitions.terminals[:, 0] == 1], 0.0)


def test_scaling_is_fitted_on_the_train_split_only(traj_dir: Path) -> None:
    train = load_training_data(traj_dir, split="train")
    test = load_training_data(traj_dir, split="test", scaler=train.scaler)
    raw_train = train.frame[train.feature_names].to_numpy()
    np.testing.assert_allclose(train.scaler.mean, raw_train.mean(axis=0))
    np.testing.assert_allclose(train.observations.mean(axis=0), 0.0, atol=1e-5)
    assert test.scaler is train.scaler
    assert not np.allclose(test.observations.mean(axis=0), 0.0, atol=1e-3)


def test_continuous_doses_scaled_to_unit_interval_with_bounds(traj_dir: Path) -> None:
    data = load_training_data(traj_dir, action_space="continuous")
    assert data.dose_scaler is not None and data.action_size == 2
    assert data.actions.min() == -1.0 and data.actions.max() == 1.0
    doses = data.frame[[c.FLUID_ML_4H, c.NOREPI_EQ_MCG_KG_MIN]].to_numpy()
    np.testing.assert_allclose(data.dose_scaler.low, doses.min(axis=0))
    np.testing.assert_allclose(data.dose_scaler.to_units(data.actions), doses, rtol=1e-5)


def _broken(tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    frame = binned_trajectories()
    change(frame)
    return write_folder(tmp_path / "bad", frame, binned_info())


def test_missing_manifest_is_incomplete_output(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "t", binned_trajectories(), binned_info(), manifest=False)
    with pytest.raises(IncompleteOutput):
        load_training_data(folder)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda f: f.__setitem__("state_0", f["state_0"].where(f.index != 3, np.nan)), "state_0"),
        (lambda f: f.__setitem__("state_1", f["state_1"].where(f.index != 5, np.inf)), "state_1"),
        (lambda f: f.__setitem__(c.ACTION, f[c.ACTION].where(f.index != 2, 25)), "action"),
        (lambda f: f.pop("state_2"), "state_2"),
        (lambda f: f.__setitem__(c.REWARD, f[c.REWARD].astype(str)), "reward"),
    ],
    ids=["nan-state", "inf-state", "action-out-of-range", "missing-state-column", "reward-dtype"],
)
def test_bad_trajectories_raise_schema_violation(tmp_path: Path, change, needle: str) -> None:  # type: ignore[no-untyped-def]
    folder = _broken(tmp_path, change)
    with pytest.raises(SchemaViolation, match=needle) as info:
        load_training_data(folder)
    assert info.value.exit_code == 2


def test_unknown_feature_is_bad_input(traj_dir: Path) -> None:
    from dosewise.data_schemas import BadInputError

    with pytest.raises(BadInputError, match="not state columns"):
        load_training_data(traj_dir, features=["heart_rate"])


def test_continuous_without_dose_columns_is_bad_input(tmp_path: Path) -> None:
    from dosewise.data_schemas import BadInputError

    frame = binned_trajectories().drop(columns=[c.FLUID_ML_4H, c.NOREPI_EQ_MCG_KG_MIN])
    info = binned_info().model_copy(update={"continuous_action_columns": []})
    folder = write_folder(tmp_path / "nodose", frame, info)
    with pytest.raises(BadInputError, match="no dose columns"):
        load_training_data(folder, action_space="continuous")
