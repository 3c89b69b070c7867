"""Trajectories -> padded (episode x step) arrays, the shape every estimator is vectorised over.

Rows are sorted by (episode, step) once; `EpisodeLayout` remembers where each row lands so any
per-row quantity (behaviour probability, target probability, Q-value) is padded the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dosewise.data_schemas import columns as c


@dataclass(frozen=True)
class EpisodeLayout:
    """Where each row of a (sorted) trajectories frame sits in the padded (n, T) grid."""

    episode_ids: np.ndarray  # (n,) episode id of each grid row
    episode_index: np.ndarray  # (rows,) grid row of each frame row
    step_index: np.ndarray  # (rows,) grid column of each frame row
    lengths: np.ndarray  # (n,) steps per episode
    horizon: int

    @property
    def n_episodes(self) -> int:
        return int(self.episode_ids.shape[0])

    @property
    def mask(self) -> np.ndarray:
        """(n, T) True on real steps, False on padding."""
        return np.arange(self.horizon)[None, :] < self.lengths[:, None]

    def pad(self, values: np.ndarray, fill: float) -> np.ndarray:
        """Scatter per-row `values` (rows,) or (rows, k) into an (n, T[, k]) array."""
        values = np.asarray(values)
        shape = (self.n_episodes, self.horizon, *values.shape[1:])
        out = np.full(shape, fill, dtype=np.result_type(values.dtype, np.float64))
        out[self.episode_index, self.step_index] = values
        return out


def sort_episodes(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by episode then step, with a fresh index (the order every array follows)."""
    return frame.sort_values([c.EPISODE_ID, c.STEP], kind="stable").reset_index(drop=True)


def episode_layout(frame: pd.DataFrame) -> EpisodeLayout:
    """Build the layout of a frame already ordered by `sort_episodes`."""
    codes, uniques = pd.factorize(frame[c.EPISODE_ID], sort=False)
    steps = frame[c.STEP].to_numpy(dtype=np.int64)
    lengths = np.bincount(codes, minlength=len(uniques)).astype(np.int64)
    horizon = int(lengths.max()) if len(lengths) else 0
    return EpisodeLayout(
        episode_ids=np.asarray(uniques, dtype=object),
        episode_index=codes.astype(np.int64),
        step_index=steps,
        lengths=lengths,
        horizon=horizon,
    )


def discounts(horizon: int, gamma: float) -> np.ndarray:
    """(T,) gamma**t."""
    return gamma ** np.arange(horizon, dtype=np.float64)


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """(n,) discounted return of each padded reward row (padding holds zeros)."""
    returns: np.ndarray = rewards @ discounts(rewards.shape[1], gamma)
    return returns
