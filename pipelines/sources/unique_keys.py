"""Key uniqueness of the raw tables that define stays, admissions and patients.

The cohort joins ICU stays to their admission and patient one to one (mimic-code's `icustay_detail`).
A repeated key there would duplicate episodes or silently pick one of two disagreeing rows, so it is
refused at the boundary, before any concept runs, with counts only: the repeated identifiers are
patient data and are never printed (the hint says how to find them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb

from dosewise.data_schemas import BadInputError

UNIQUE_KEYS: Mapping[str, Mapping[str, str]] = {
    "mimic_iv": {"icustays": "stay_id", "admissions": "hadm_id", "patients": "subject_id"},
    "mimic_iii": {"icustays": "icustay_id", "admissions": "hadm_id", "patients": "subject_id"},
}
WHY = {"icustays": "each ICU stay becomes one episode", "admissions": "each stay takes its outcome from "
       "one admission", "patients": "each stay takes age, sex and date of death from one patient"}


def check_unique_keys(con: duckdb.DuckDBPyConnection, version: str, files: Mapping[str, Path]) -> None:
    """Raise `BadInputError` (exit 2) when a key column of icustays, admissions or patients repeats.

    Exact duplicate rows and rows that disagree are told apart in the message, since the fix differs."""
    for table, key in UNIQUE_KEYS[version].items():
        if table not in files:
            continue
        repeated, rows, distinct_rows = con.execute(
            f'SELECT count(*), coalesce(sum(n), 0), coalesce(sum(d), 0) FROM (SELECT "{key}", count(*) AS n, '
            f'count(DISTINCT t) AS d FROM (SELECT "{key}", "{table}" AS t FROM "{table}") GROUP BY "{key}" '
            "HAVING count(*) > 1)"
        ).fetchone() or (0, 0, 0)
        if not repeated:
            continue
        kind = ("exact duplicate rows" if distinct_rows == repeated
                else "rows that disagree in other columns")
        raise BadInputError(
            f"{files[table].name} repeats {int(repeated)} {key} value(s) on {int(rows)} rows ({kind}); {key} "
            f"must be unique in {table}, since {WHY[table]}.",
            f"Keep one row per {key} and re-run (the ids are not printed; list them with "
            f"`SELECT {key} FROM {table} GROUP BY 1 HAVING count(*) > 1` in DuckDB).",
        )
