"""The trajectory contract: the only thing the ETL and the learners share.

A trajectories folder holds `trajectories.parquet` (one row per episode x step), `splits.parquet`
(episode -> train/validation/test) and a `manifest.json` whose `dataset` field
(`TrajectoryDatasetInfo`) names the state columns, the action space and the action bin edges.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pydantic import BaseModel, ConfigDict, Field

from . import columns as c


class TrajectoryDatasetInfo(BaseModel):
    """What a learner needs to know about a trajectories table, beyond its columns."""

    model_config = ConfigDict(extra="forbid")

    state_columns: list[str] = Field(min_length=1, description="State features, in order.")
    n_actions: int = Field(ge=2, description="Size of the discrete action space (`action`).")
    continuous_action_columns: list[str] = Field(
        default_factory=list,
        description="Dose columns (units in the names) for continuous-action learners.",
    )
    action_bin_edges: dict[str, list[float]] = Field(
        default_factory=dict,
        description="Per dose column, the bin edges that map doses to the discrete bins.",
    )
    action_grid: list[int] = Field(
        default_factory=list,
        description="Bins per dose column; action = fluid_bin * grid[1] + vaso_bin for 5x5.",
    )
    bin_hours: float | None = Field(default=None, description="Length of one step in hours.")
    action_labels: list[str] = Field(
        default_factory=list,
        description="Names of the discrete actions when they have them (trial arms, in action order), "
        "so `constant:LABEL` can name one; empty when actions are bins.",
    )
    has_behaviour_prob: bool = Field(
        default=False, description="True when `behaviour_prob` holds known logging probabilities."
    )
    ids_pseudonymised: bool = Field(default=True)
    reward_description: str = ""


def _contiguous_steps(frame: pd.DataFrame) -> bool:
    """Steps of each episode are 0, 1, ..., n-1 with no gaps or repeats."""
    if frame.empty:
        return True
    grouped = frame.groupby(c.EPISODE_ID, sort=False)[c.STEP]
    counts = grouped.transform("size")
    ok = (grouped.transform("min") == 0) & (grouped.transform("max") == counts - 1)
    # n distinct integers in [0, n-1] are exactly 0..n-1
    return bool(ok.all()) and not bool(frame.duplicated([c.EPISODE_ID, c.STEP]).any())


def _one_terminal_at_end(frame: pd.DataFrame) -> bool:
    """At most one terminal per episode, and terminal/timeout only on the last step."""
    if frame.empty:
        return True
    last = frame[c.STEP] == frame.groupby(c.EPISODE_ID, sort=False)[c.STEP].transform("max")
    ends = frame[c.TERMINAL] | frame[c.TIMEOUT]
    per_episode = frame.groupby(c.EPISODE_ID, sort=False)[c.TERMINAL].sum()
    return bool((~ends | last).all()) and bool((per_episode <= 1).all())


def _not_both_terminal_and_timeout(frame: pd.DataFrame) -> pd.Series:
    return ~(frame[c.TERMINAL] & frame[c.TIMEOUT])


TrajectorySchema = pa.DataFrameSchema(
    {
        c.EPISODE_ID: pa.Column(str, nullable=False),
        c.STEP: pa.Column("int64", pa.Check.ge(0), nullable=False),
        c.BIN_START: pa.Column("datetime64[ns]", nullable=False, coerce=True),
        c.ACTION: pa.Column("int64", pa.Check.ge(0), nullable=False),
        c.REWARD: pa.Column(
            float, pa.Check(lambda s: np.isfinite(s), error="reward must be finite"),
            nullable=False,
        ),
        c.TERMINAL: pa.Column(bool, nullable=False),
        c.TIMEOUT: pa.Column(bool, nullable=False),
    },
    checks=[
        pa.Check(_contiguous_steps, error="steps of each episode must be 0..n-1 without gaps"),
        pa.Check(
            _one_terminal_at_end,
            error="at most one terminal per episode, and terminal/timeout only on its last step",
        ),
        pa.Check(_not_both_terminal_and_timeout, error="a step cannot be terminal and timeout"),
    ],
    strict=False,
    name="TrajectorySchema",
)

SplitsSchema = pa.DataFrameSchema(
    {
        c.EPISODE_ID: pa.Column(str, unique=True, nullable=False),
        c.SPLIT: pa.Column(str, pa.Check.isin(list(c.SPLITS)), nullable=False),
    },
    strict=True,
    name="SplitsSchema",
)


def trajectory_schema_for(info: TrajectoryDatasetInfo) -> pa.DataFrameSchema:
    """The trajectory schema plus this dataset's state, dose and action-range checks."""
    finite = pa.Check(lambda s: np.isfinite(s), error="must be finite (no NaN or inf)")
    extra: dict[str, pa.Column] = {
        name: pa.Column(float, finite, nullable=False, coerce=True) for name in info.state_columns
    }
    for name in info.continuous_action_columns:
        extra[name] = pa.Column(float, [finite, pa.Check.ge(0)], nullable=False, coerce=True)
    extra[c.ACTION] = pa.Column(
        "int64", pa.Check.in_range(0, info.n_actions - 1), nullable=False
    )
    if info.has_behaviour_prob:
        extra[c.BEHAVIOUR_PROB] = pa.Column(
            float, pa.Check.in_range(0.0, 1.0, include_min=False), nullable=False
        )
    return TrajectorySchema.add_columns(extra)


SplitName = Literal["train", "validation", "test"]
