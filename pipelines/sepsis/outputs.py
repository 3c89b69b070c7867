"""Sepsis-only writers (concept tables, cohort table); the shared writers live in `..outputs`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb
import pandas as pd

from ..outputs import copy_to_parquet


def write_concepts(con: duckdb.DuckDBPyConnection, names: Iterable[str], folder: Path) -> list[Path]:
    """Each built concept table -> concepts/<name>.parquet, keyed by the source ids (sorted)."""
    paths = []
    for name in names:
        cols = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()]
        keys = [k for k in ("stay_id", "subject_id", "hadm_id", "charttime", "starttime", "hr") if k in cols]
        order = ", ".join(keys + [c for c in cols if c not in keys])
        paths.append(
            copy_to_parquet(con, f"SELECT * FROM {name} ORDER BY {order}", folder / f"{name}.parquet")
        )
    return paths


COHORT_COLUMNS = [
    "episode_id",
    "age_years",
    "gender",
    "care_system",
    "suspected_infection_time",
    "onset_time",
    "window_start",
    "window_end",
    "n_bins",
    "end_reason",
    "sofa_score",
    "died_in_hospital",
    "died_90d",
    "weight_source",
]


def cohort_table(cohort: pd.DataFrame, raw_ids: bool) -> pd.DataFrame:
    """One row per episode: demographics, onset, window, outcome; source ids only when configured."""
    cols = COHORT_COLUMNS + (["stay_id", "subject_id", "hadm_id"] if raw_ids else [])
    out = cohort[cols].sort_values("episode_id").reset_index(drop=True)
    for col in ("suspected_infection_time", "onset_time", "window_start", "window_end"):
        out[col] = pd.to_datetime(out[col]).astype("datetime64[ns]")
    return out
