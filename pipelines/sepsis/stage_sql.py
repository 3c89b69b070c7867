"""The SQL files of the sepsis stages (`pipelines/sql/sepsis/`) and how a stage runs them.

Each file makes one table (`CREATE OR REPLACE TABLE|VIEW name AS ...`, the file named after it) and
declares in its header what it reads (`-- depends:`) and the run settings it takes as named
parameters (`-- params:`, written `$name` in DuckDB SQL; sqlglot turns them into Spark's `:name`).
No stage query is assembled from strings: a setting is a parameter, never text pasted into the SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import duckdb

from ..sources.duckdb_catalog import MimicCatalog
from ..sources.spark_catalog import SparkCatalog, SparkTables


@dataclass(frozen=True)
class StageSql:
    """One stage SQL file: the table it makes, the tables it reads and the parameters it takes."""

    table: str
    sql: str
    depends: tuple[str, ...]
    params: tuple[str, ...]


def _header_list(sql: str, key: str) -> tuple[str, ...]:
    match = re.search(rf"^-- {key}:(.*)$", sql, flags=re.MULTILINE)
    return tuple(p.strip() for p in (match.group(1) if match else "").split(",") if p.strip())


@cache
def stage_sql(table: str, folder: str = "sepsis") -> StageSql:
    """The file `pipelines/sql/<folder>/<table>.sql` (sepsis or chemo stages), its header read."""
    sql = (files("dosewise.pipelines") / "sql" / folder / f"{table}.sql").read_text(encoding="utf-8")
    return StageSql(table, sql, _header_list(sql, "depends"), _header_list(sql, "params"))


def run_sql_file(con: duckdb.DuckDBPyConnection | MimicCatalog | SparkTables, table: str,
                 settings: Mapping[str, Any] | None = None, folder: str = "sepsis") -> None:
    """Make `table` from its SQL file, passing the file's declared parameters from `settings`
    (on Spark the file is transpiled and the table is a checkpointed temporary view)."""
    item = stage_sql(table, folder)
    missing = [p for p in item.params if p not in (settings or {})]
    if missing:
        raise KeyError(f"{table}.sql needs the settings {missing}")
    params = {p: (settings or {})[p] for p in item.params}
    if isinstance(con, MimicCatalog | SparkTables):
        where = f"stage table `{table}` (pipelines/sql/{folder}/{table}.sql)"
        con.execute(item.sql, what=where, params=params)
    else:
        con.execute(item.sql, params)


@dataclass(frozen=True)
class StageCounts:
    """Rows in, kept and quarantined (by rule) for one SQL stage."""

    rows_in: int
    rows_out: int
    quarantined_by_rule: dict[str, int]
    note: str = ""

    @property
    def rows_quarantined(self) -> int:
        """Rows removed by quarantine rules (clipped rows are kept and not counted here)."""
        return sum(v for k, v in self.quarantined_by_rule.items() if not k.endswith("_clipped"))


def count_rows(cat: MimicCatalog | SparkCatalog, *tables: str) -> int:
    """Rows in `tables` together."""
    return sum(int(cat.rows(f'SELECT count(*) FROM "{t}"')[0][0]) for t in tables)


def count_by_rule(cat: MimicCatalog | SparkCatalog, table: str) -> dict[str, int]:
    """Quarantined rows of a `q_*` table per rule."""
    rows = cat.rows(f'SELECT rule, count(*) FROM "{table}" GROUP BY rule ORDER BY rule')
    return {str(r): int(n) for r, n in rows}
