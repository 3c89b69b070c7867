"""Writers every ETL shares: atomic parquet from DuckDB, quarantine files.

Whole output folders are staged and swapped in by `data_schemas.staged_output`.

Large tables go straight from DuckDB to parquet (COPY) through `atomic_path`, so quarantines of
millions of rows never pass through pandas and never appear half-written. The sepsis and the
chemotherapy pipelines both write through these.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from dosewise.data_schemas import atomic_path, write_table_atomic

QUARANTINE_SQL_COLUMNS = 'stage, rule, "column", failure_case, row_key, reason'


def copy_to_parquet(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> Path:
    """Write the result of `query` to `path` atomically (zstd parquet, rows in query order)."""
    with atomic_path(path) as tmp:
        escaped = str(tmp).replace("'", "''")
        con.execute(f"COPY ({query}) TO '{escaped}' (FORMAT parquet, COMPRESSION zstd)")
    return path


def write_sql_quarantine(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> Path:
    """A DuckDB quarantine table -> parquet, sorted so reruns give identical bytes."""
    return copy_to_parquet(
        con, f"SELECT {QUARANTINE_SQL_COLUMNS} FROM {table} ORDER BY rule, row_key, failure_case", path
    )


def write_frame_quarantine(frame: pd.DataFrame, path: Path) -> Path:
    """A pandas quarantine frame -> parquet (string columns), sorted for stable bytes."""
    out = frame.astype(object).where(frame.notna(), None)
    out = out.sort_values(["rule", "row_key"], kind="stable").reset_index(drop=True)
    for col in out.columns:
        out[col] = out[col].astype("string")
    return write_table_atomic(out, path)
