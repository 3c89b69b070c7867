"""Seeded patient-level train/validation/test splits.

Splitting by patient (episode) rather than by row keeps every step of a patient in one split,
so no information leaks from training into evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dosewise.data_schemas import ConfigError
from dosewise.data_schemas import columns as c


def assign_splits(
    episode_ids: Sequence[str], fractions: tuple[float, float, float], seed: int
) -> pd.DataFrame:
    """Assign each episode to train/validation/test by a seeded permutation.

    The ids are sorted first, so the result depends only on the set of ids and the seed.

    >>> assign_splits(["a", "b", "c", "d"], (0.5, 0.25, 0.25), seed=0)[c.SPLIT].value_counts().to_dict()
    {'train': 2, 'validation': 1, 'test': 1}
    """
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ConfigError(
            f"`split_fractions` must be three non-negative numbers summing to 1. Got {fractions}.",
            "Use, for example, [0.7, 0.15, 0.15] for train/validation/test.",
        )
    ids = np.array(sorted(set(map(str, episode_ids))), dtype=object)
    order = np.random.default_rng(seed).permutation(len(ids))
    n_train = round(fractions[0] * len(ids))
    n_val = round(fractions[1] * len(ids))
    labels = np.empty(len(ids), dtype=object)
    labels[order[:n_train]] = "train"
    labels[order[n_train : n_train + n_val]] = "validation"
    labels[order[n_train + n_val :]] = "test"
    return pd.DataFrame({c.EPISODE_ID: ids.astype(str), c.SPLIT: labels.astype(str)})
