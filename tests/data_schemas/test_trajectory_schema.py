"""TrajectorySchema accepts valid frames and rejects each broken invariant readably."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dosewise.data_schemas import SchemaViolation, trajectory_schema_for, validate_frame
from dosewise.data_schemas import columns as c
from tests.builders import make_info, make_trajectories


def _validate(frame: pd.DataFrame) -> pd.DataFrame:
    return validate_frame(frame, trajectory_schema_for(make_info()), "trajectories")


def test_valid_trajectories_pass() -> None:
    frame = make_trajectories()
    assert len(_validate(frame)) == len(frame)


def test_gap_in_steps_is_rejected() -> None:
    frame = make_trajectories()
    frame = frame[~((frame[c.EPISODE_ID] == "ep001") & (frame[c.STEP] == 1))]
    with pytest.raises(SchemaViolation, match="steps of each episode"):
        _validate(frame)


def test_duplicate_step_is_rejected() -> None:
    frame = make_trajectories()
    frame = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    with pytest.raises(SchemaViolation, match="steps of each episode"):
        _validate(frame)


def test_two_terminals_in_one_episode_are_rejected() -> None:
    frame = make_trajectories()
    frame.loc[(frame[c.EPISODE_ID] == "ep000") & (frame[c.STEP] == 0), c.TERMINAL] = True
    with pytest.raises(SchemaViolation, match="at most one terminal"):
        _validate(frame)


def test_terminal_and_timeout_together_are_rejected() -> None:
    frame = make_trajectories()
    frame.loc[(frame[c.EPISODE_ID] == "ep000") & (frame[c.STEP] == 2), c.TIMEOUT] = True
    with pytest.raises(SchemaViolation, match="terminal and timeout"):
        _validate(frame)


def test_nan_state_is_rejected_naming_the_column() -> None:
    frame = make_trajectories()
    frame.loc[3, "state_1"] = np.nan
    with pytest.raises(SchemaViolation, match="state_1"):
        _validate(frame)


def test_action_outside_the_action_space_is_rejected() -> None:
    frame = make_trajectories()
    frame.loc[0, c.ACTION] = 25
    with pytest.raises(SchemaViolation, match="`action`"):
        _validate(frame)


def test_missing_column_is_rejected() -> None:
    frame = make_trajectories().drop(columns=[c.REWARD])
    with pytest.raises(SchemaViolation, match="reward"):
        _validate(frame)
