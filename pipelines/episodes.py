"""Episode ids and patient-level splits, shared by every ETL.

Ids are salted pseudonyms of the source keys unless raw ids are configured; splits are drawn per
patient so every episode of one patient lands in the same split (no leakage across splits).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dosewise.data_schemas import columns as c

from .privacy import pseudonymize_ids
from .splits import assign_splits


def episode_ids(
    episode_keys: Sequence[object], *, pseudonymize: bool, salt: str, raw_prefix: str
) -> list[str]:
    """Episode ids of source keys: salted pseudonyms, or `raw_prefix` + the key."""
    if pseudonymize:
        return pseudonymize_ids(episode_keys, salt)
    return [f"{raw_prefix}{s}" for s in episode_keys]


def episode_ids_and_splits(
    episode_keys: Sequence[object],
    patient_keys: Sequence[object],
    *,
    pseudonymize: bool,
    salt: str,
    fractions: tuple[float, float, float],
    seed: int,
    raw_prefix: str,
) -> tuple[list[str], pd.DataFrame]:
    """Episode ids (pseudonyms, or `raw_prefix` + source key) and the seeded per-patient split."""
    episodes = episode_ids(episode_keys, pseudonymize=pseudonymize, salt=salt, raw_prefix=raw_prefix)
    patients = pseudonymize_ids(patient_keys, salt, "pt_") if pseudonymize else [str(s) for s in patient_keys]
    by_patient = assign_splits(patients, fractions, seed)
    split_of = dict(zip(by_patient[c.EPISODE_ID], by_patient[c.SPLIT], strict=True))
    return episodes, pd.DataFrame({c.EPISODE_ID: episodes, c.SPLIT: [split_of[p] for p in patients]})
