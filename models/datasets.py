"""Trajectories folder -> scaled transition arrays and a d3rlpy `MDPDataset`.

Only the public trajectory contract is read (`read_trajectories`). Feature scaling is fitted on
the training split alone and travels with the policy. Terminal steps (death, discharge) end the
return; timeouts (end of the observation window) do not, exactly as d3rlpy treats them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from dosewise.data_schemas import (
    MANIFEST_NAME,
    BadInputError,
    RunManifest,
    TrajectoryDatasetInfo,
    read_trajectories,
)
from dosewise.data_schemas import columns as c
from dosewise.data_schemas.validation import select_split

ActionSpace = Literal["discrete", "continuous"]


@dataclass(frozen=True)
class StateScaler:
    """Standardisation (x - mean) / std of the state features, fitted on the train split."""

    feature_names: list[str]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, feature_names: list[str]) -> StateScaler:
        """Fit on `frame`; constant features get std 1 so they map to 0, never to NaN."""
        values = frame[feature_names].to_numpy(np.float64)
        std = values.std(axis=0)
        return cls(list(feature_names), values.mean(axis=0), np.where(std > 1e-12, std, 1.0))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Scaled float32 (n, d) features of `frame` (columns taken by name, in order)."""
        scaled: np.ndarray = (frame[self.feature_names].to_numpy(np.float64) - self.mean) / self.std
        return scaled.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON form saved in `policy.json`."""
        return {"feature_names": self.feature_names, "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StateScaler:
        """Inverse of `to_dict`."""
        return cls(list(data["feature_names"]), np.asarray(data["mean"]), np.asarray(data["std"]))


@dataclass(frozen=True)
class DoseScaler:
    """Linear map of each dose column from its train-split [low, high] to [-1, 1]."""

    columns: list[str]
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: list[str]) -> DoseScaler:
        """Record the train split's min and max of each dose column as the bounds."""
        values = frame[columns].to_numpy(np.float64)
        low, high = values.min(axis=0), values.max(axis=0)
        return cls(list(columns), low, np.where(high > low, high, low + 1.0))

    def to_unit(self, doses: np.ndarray) -> np.ndarray:
        """Doses in units -> [-1, 1] (values outside the bounds are clipped)."""
        unit: np.ndarray = np.clip(2.0 * (doses - self.low) / (self.high - self.low) - 1.0, -1.0, 1.0)
        return unit.astype(np.float32)

    def to_units(self, unit: np.ndarray) -> np.ndarray:
        """[-1, 1] -> doses in units."""
        doses: np.ndarray = self.low + (np.clip(unit, -1.0, 1.0) + 1.0) / 2.0 * (self.high - self.low)
        return doses

    def to_dict(self) -> dict[str, Any]:
        """JSON form saved in `policy.json` (the recorded bounds)."""
        return {"columns": self.columns, "low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DoseScaler:
        """Inverse of `to_dict`."""
        return cls(list(data["columns"]), np.asarray(data["low"]), np.asarray(data["high"]))


@dataclass(frozen=True)
class TransitionArrays:
    """Flat float32 transitions (one row per usable step): what the vectorised sampler indexes."""

    observations: np.ndarray  # (n, d)
    actions: np.ndarray  # (n, 1) action index, or (n, k) doses in [-1, 1]
    rewards: np.ndarray  # (n, 1)
    next_observations: np.ndarray  # (n, d); zeros after a terminal step
    terminals: np.ndarray  # (n, 1) 1.0 where the episode ends for real

    def __len__(self) -> int:
        return int(self.observations.shape[0])


@dataclass
class TrainingData:
    """One split of a trajectories folder, ready for d3rlpy (see `load_training_data`)."""

    frame: pd.DataFrame
    info: TrajectoryDatasetInfo
    feature_names: list[str]
    action_space: ActionSpace
    scaler: StateScaler
    dose_scaler: DoseScaler | None
    observations: np.ndarray
    actions: np.ndarray
    episode_ends: np.ndarray
    terminals: np.ndarray
    manifest_sha256: str
    stats: dict[str, int] = field(default_factory=dict)
    #: The trajectories' id-salt fingerprint (`id_salt_fingerprint` in their manifest; None for raw
    #: ids), or "unrecorded" when the producer did not record one; see `ope.inputs.check_same_salt`.
    id_salt_fingerprint: str | None = "unrecorded"

    @property
    def action_size(self) -> int:
        """Discrete: number of bins; continuous: number of dose columns."""
        if self.action_space == "discrete":
            return self.info.n_actions
        return len(self.info.continuous_action_columns)

    def transitions(self) -> TransitionArrays:
        """The transitions d3rlpy would pick: every step except the last one of an unfinished
        (timeout) episode, whose next state is unknown."""
        rewards = self.frame[c.REWARD].to_numpy(np.float32)[:, None]
        ends, terms = self.episode_ends, self.terminals
        keep = ~ends | terms
        next_obs = np.zeros_like(self.observations)
        next_obs[:-1] = self.observations[1:]
        next_obs[ends] = 0.0
        return TransitionArrays(
            observations=self.observations[keep],
            actions=self.actions[keep],
            rewards=rewards[keep],
            next_observations=next_obs[keep],
            terminals=terms[keep].astype(np.float32)[:, None],
        )

    def mdp_dataset(self) -> Any:
        """The split as a d3rlpy `MDPDataset` (terminals and timeouts kept distinct)."""
        from d3rlpy.constants import ActionSpace as D3ActionSpace
        from d3rlpy.dataset import MDPDataset

        discrete = self.action_space == "discrete"
        return MDPDataset(
            observations=self.observations,
            actions=self.actions[:, 0].astype(np.int64) if discrete else self.actions,
            rewards=self.frame[c.REWARD].to_numpy(np.float32),
            terminals=self.terminals.astype(np.float32),
            timeouts=(self.episode_ends & ~self.terminals).astype(np.float32),
            action_space=D3ActionSpace.DISCRETE if discrete else D3ActionSpace.CONTINUOUS,
            action_size=self.action_size,
        )


def _features(info: TrajectoryDatasetInfo, features: list[str] | None) -> list[str]:
    if features is None:
        return list(info.state_columns)
    unknown = [f for f in features if f not in info.state_columns]
    if unknown or not features:
        raise BadInputError(
            f"Features {unknown or features} are not state columns of this dataset.",
            f"Choose from: {', '.join(info.state_columns)}.",
        )
    return list(features)


@dataclass(frozen=True)
class LoadedTrajectories:
    """A trajectories folder read and validated once (every split), so that one command can take
    several splits, or the same split several times, without reading the folder again."""

    folder: Path
    frame: pd.DataFrame  # every split's rows, validated, with the `split` column
    manifest: RunManifest
    info: TrajectoryDatasetInfo
    manifest_sha256: str  # SHA-256 of the folder's manifest.json (the input hash outputs record)

    @classmethod
    def read(cls, trajectories_dir: Path) -> LoadedTrajectories:
        """Read and validate `trajectories_dir` (`read_trajectories`)."""
        folder = Path(trajectories_dir)
        frame, manifest = read_trajectories(folder)
        if manifest.dataset is None:  # read_trajectories already refuses such folders
            raise BadInputError(f"{folder} has no dataset contract in its manifest.", "Re-run its producer.")
        sha = hashlib.sha256((folder / MANIFEST_NAME).read_bytes()).hexdigest()
        return cls(folder, frame, manifest, manifest.dataset, sha)

    def split_rows(self, split: str) -> pd.DataFrame:
        """One split's rows in file order (index reset), as `read_trajectories(folder, split)`."""
        return select_split(self.frame, split, self.folder)


def load_training_data(
    trajectories_dir: Path | LoadedTrajectories,
    *,
    split: str = "train",
    features: list[str] | None = None,
    action_space: ActionSpace = "discrete",
    scaler: StateScaler | None = None,
    dose_scaler: DoseScaler | None = None,
) -> TrainingData:
    """Read and validate one split (or take it from trajectories read already); fit the scalers on
    it unless given (fit on train only)."""
    loaded = (trajectories_dir if isinstance(trajectories_dir, LoadedTrajectories)
              else LoadedTrajectories.read(trajectories_dir))
    folder, info, frame = loaded.folder, loaded.info, loaded.split_rows(split)
    names = _features(info, features)
    frame = frame.sort_values([c.EPISODE_ID, c.STEP], kind="stable").reset_index(drop=True)
    scaler = scaler or StateScaler.fit(frame, names)
    if action_space == "continuous":
        doses = list(info.continuous_action_columns)
        if not doses or any(col not in frame.columns for col in doses):
            raise BadInputError(
                f"{folder} has no dose columns (continuous_action_columns={doses}); continuous "
                "algorithms (cql, iql, td3_plus_bc) need them.",
                "Use a discrete algorithm (discrete_cql, double_dqn, dqn, discrete_bcq).",
            )
        dose_scaler = dose_scaler or DoseScaler.fit(frame, doses)
        actions = dose_scaler.to_unit(frame[doses].to_numpy(np.float64))
    else:
        dose_scaler = None
        actions = frame[c.ACTION].to_numpy(np.float32)[:, None]
    episode = frame[c.EPISODE_ID].to_numpy()
    ends = np.ones(len(frame), dtype=bool)
    ends[:-1] = episode[1:] != episode[:-1]
    terminals = frame[c.TERMINAL].to_numpy(bool) & ends
    timeouts = frame[c.TIMEOUT].to_numpy(bool) & ends
    stats = {
        "n_episodes": int(ends.sum()),
        "n_rows": len(frame),
        "n_terminal_episodes": int(terminals.sum()),
        "n_timeout_episodes": int(timeouts.sum()),
        "n_open_episodes": int((ends & ~terminals & ~timeouts).sum()),
    }
    return TrainingData(
        frame=frame, info=info, feature_names=names, action_space=action_space, scaler=scaler,
        dose_scaler=dose_scaler, observations=scaler.transform(frame), actions=actions,
        episode_ends=ends, terminals=terminals, manifest_sha256=loaded.manifest_sha256, stats=stats,
        id_salt_fingerprint=loaded.manifest.extra.get("id_salt_fingerprint", "unrecorded"),
    )


def to_mdp_dataset(
    trajectories_dir: Path,
    *,
    split: str = "train",
    features: list[str] | None = None,
    action_space: ActionSpace = "discrete",
    scaler: StateScaler | None = None,
) -> Any:
    """A trajectories folder's split as a d3rlpy `MDPDataset` with scaled states.

    Episodes that end neither terminal nor timeout (an open end) are treated as timeouts: their
    last step has no known next state, so it bootstraps nothing.
    """
    return load_training_data(
        trajectories_dir, split=split, features=features, action_space=action_space, scaler=scaler
    ).mdp_dataset()
