"""Writers every ETL shares: atomic parquet from DuckDB, quarantine files.

Whole output folders are staged and swapped in by `data_schemas.staged_output`.

Large tables go straight from DuckDB to parquet (COPY) through `atomic_path`, so quarantines of
millions of rows never pass through pandas and never appear half-written. The sepsis and the
chemotherapy pipelines both write through these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from dosewise.data_schemas import atomic_path, write_table_atomic
from dosewise.data_schemas.quarantine import QUARANTINE_COLUMNS

from .privacy import RunIds


def copy_to_parquet(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> Path:
    """Write the result of `query` to `path` atomically (zstd parquet, rows in query order)."""
    with atomic_path(path) as tmp:
        escaped = str(tmp).replace("'", "''")
        con.execute(f"COPY ({query}) TO '{escaped}' (FORMAT parquet, COMPRESSION zstd)")
    return path


class _DuckDBConnection:
    """A bare DuckDB connection seen through the catalog calls `write_quarantine` makes."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def rows(self, sql: str, *, what: str = "query") -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def register(self, name: str, frame: pd.DataFrame) -> None:
        self.con.register(name, frame)

    def unregister(self, name: str) -> None:
        self.con.unregister(name)

    def copy_to_parquet(self, query: str, path: Path) -> Path:
        return copy_to_parquet(self.con, query, path)


def write_quarantine(cat: Any, source: str | pd.DataFrame, path: Path, ids: RunIds) -> Path:
    """A quarantine (table name or frame) -> parquet, its stays named as in the trajectories.

    `cat` is a DuckDB connection or a catalog of either engine (`MimicCatalog`, `SparkCatalog`):
    the query below is DuckDB SQL, transpiled on Spark, and only the distinct stay ids reach Python
    (to be keyed). Quarantine rows carry the raw `stay_id` in a column of their own and the rest of
    the key in `row_key`; this is the one place where the two are joined, with the run's pseudonym
    for the stay (`episode_id=ep_...`), or `stay_id=<raw>` only when raw ids are configured. Sorted
    so reruns give identical bytes.
    """
    if isinstance(cat, duckdb.DuckDBPyConnection):
        cat = _DuckDBConnection(cat)
    table = source
    if isinstance(source, pd.DataFrame):
        frame = source if "stay_id" in source else source.assign(stay_id=None)
        cat.register("_quarantine_frame", frame)
        table = "_quarantine_frame"
    stays = [r[0] for r in cat.rows(f"SELECT DISTINCT CAST(stay_id AS BIGINT) FROM {table}")]
    cat.register("_stay_keys", pd.DataFrame({"stay_id": pd.array(stays, dtype="Int64"),
                                             "stay_key": ids.stay_keys(stays)}))
    query = (
        "SELECT CAST(q.stage AS VARCHAR) AS stage, CAST(q.rule AS VARCHAR) AS rule, "
        'CAST(q."column" AS VARCHAR) AS "column", CAST(q.failure_case AS VARCHAR) AS failure_case, '
        "concat_ws('|', k.stay_key, nullif(CAST(q.row_key AS VARCHAR), '')) AS row_key, "
        "CAST(q.reason AS VARCHAR) AS reason "
        f"FROM {table} q LEFT JOIN _stay_keys k ON k.stay_id IS NOT DISTINCT FROM CAST(q.stay_id AS BIGINT) "
        "ORDER BY rule, row_key, failure_case"
    )
    try:
        return Path(cat.copy_to_parquet(query, path))
    finally:
        cat.unregister("_stay_keys")
        if table == "_quarantine_frame":
            cat.unregister("_quarantine_frame")


def write_frame_quarantine(
    frame: pd.DataFrame, path: Path, ids: RunIds, id_column: str = "patient_id"
) -> Path:
    """A pandas quarantine frame -> parquet (string columns), sorted for stable bytes.

    Rows that name a patient carry the source id in `id_column` (see `make_quarantine`), never in
    `row_key`; here it becomes the run's pseudonym (`episode_id=ep_...`, the trajectories' id), or
    `patient_id=<raw>` only when raw ids are configured. Stay-keyed quarantines of the sepsis ETL go
    through `write_quarantine` the same way.
    """
    out = frame.astype(object).where(frame.notna(), None)
    if id_column in out:
        keys = pd.Series(ids.id_keys(out[id_column], "patient_id"), index=out.index, dtype=object)
        rest = out["row_key"].fillna("").astype(str)
        out["row_key"] = keys.where(rest == "", keys + "|" + rest)
    out = out[list(QUARANTINE_COLUMNS)]
    out = out.sort_values(["rule", "row_key"], kind="stable").reset_index(drop=True)
    for col in out.columns:
        out[col] = out[col].astype("string")
    return write_table_atomic(out, path)
