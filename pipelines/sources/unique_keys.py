"""Key uniqueness of the raw tables that define stays, admissions and patients.

The cohort joins ICU stays to their admission and patient one to one (mimic-code's `icustay_detail`).
A repeated key there would duplicate episodes or silently pick one of two disagreeing rows, so it is
refused at the boundary, before any concept runs, with counts only: the repeated identifiers are
patient data and are never printed (the hint says how to find them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from dosewise.data_schemas import BadInputError

UNIQUE_KEYS: Mapping[str, Mapping[str, str]] = {
    "mimic_iv": {"icustays": "stay_id", "admissions": "hadm_id", "patients": "subject_id"},
    "mimic_iii": {"icustays": "icustay_id", "admissions": "hadm_id", "patients": "subject_id"},
}
WHY = {"icustays": "each ICU stay becomes one episode", "admissions": "each stay takes its outcome from "
       "one admission", "patients": "each stay takes age, sex and date of death from one patient"}


def _repeats_sql(table: str, key: str, spark: bool) -> str:
    """Repeated keys, their rows and their distinct rows (the whole row compared: DuckDB's row value,
    on Spark the row as JSON, which keeps NULLs apart from values)."""
    q, row = ("`", "to_json(struct(*))") if spark else ('"', f'"{table}"')
    return (
        f"SELECT count(*), coalesce(sum(n), 0), coalesce(sum(d), 0) FROM (SELECT {q}{key}{q}, count(*) AS n, "
        f"count(DISTINCT t) AS d FROM (SELECT {q}{key}{q}, {row} AS t FROM {q}{table}{q}) "
        f"GROUP BY {q}{key}{q} HAVING count(*) > 1)"
    )


def check_unique_keys(con: Any, version: str, files: Mapping[str, Path]) -> None:
    """Raise `BadInputError` (exit 2) when a key column of icustays, admissions or patients repeats.

    `con` is a DuckDB connection or a `SparkCatalog` (the check runs where the raw tables are).
    Exact duplicate rows and rows that disagree are told apart in the message, since the fix differs."""
    spark = not isinstance(con, duckdb.DuckDBPyConnection)
    for table, key in UNIQUE_KEYS[version].items():
        if table not in files:
            continue
        sql = _repeats_sql(table, key, spark)
        found = tuple(con.spark.sql(sql).collect()[0]) if spark else con.execute(sql).fetchone()
        repeated, rows, distinct_rows = found or (0, 0, 0)
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
