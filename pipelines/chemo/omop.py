"""OMOP CDM v5.4 + oncology extension files -> validated DuckDB tables (the boundary of the OMOP path).

DuckDB reads each table straight from its file (parquet, or csv / csv.gz as text), so no whole
table is held in pandas and memory stays under `input.duckdb_memory_limit` (DuckDB spills to a
temporary database beside it). Every row is checked against the table's pandera schema in
`data_schemas.raw_omop`, translated to SQL by `data_schemas.sql_checks` (same rule names as
`split_valid`); rows that break a rule go to quarantine with it, the rest form the typed table
`<name>` with `_row`, the row's position in its file. `omop_sql.py` assembles the cycles from them.

The same checks run on Spark (`--engine spark`, `spark_omop.py`): the helpers below (`run`,
`fetch`, `frame`, `count`, `register_table`) take a DuckDB connection or a `SparkTables`, and the
check SQL (`checked_table_sql`) is DuckDB's, transpiled there.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from dosewise.data_schemas import BadInputError, MissingSourceTable, make_quarantine
from dosewise.data_schemas.raw_omop import OMOP_SCHEMAS, OPTIONAL_TABLES, REQUIRED_TABLES, TABLE_PURPOSE
from dosewise.data_schemas.sql_checks import RowRule, quote, schema_sql

from ..sources.spark_catalog import SparkTables

Tables = duckdb.DuckDBPyConnection | SparkTables
"""Where the OMOP tables live: a DuckDB connection, or Spark's temporary views (`--engine spark`)."""

#: The strings pyarrow's csv reader (and so pandas) reads as missing.
NULL_STRINGS = ("", "NA", "N/A", "n/a", "NULL", "null", "NaN", "nan", "-NaN", "-nan", "#N/A", "#NA")


def run(con: Tables, sql: str, what: str = "OMOP tables") -> None:
    """Run one DuckDB statement (on Spark transpiled; a created table becomes a checkpointed view)."""
    if isinstance(con, SparkTables):
        con.execute(sql, what=what)
    else:
        con.execute(sql)


def fetch(con: Tables, sql: str) -> list[tuple[Any, ...]]:
    """The rows of a (small) query."""
    if isinstance(con, SparkTables):
        return con.rows(sql, what="OMOP tables")
    return con.execute(sql).fetchall()


def frame(con: Tables, sql: str) -> pd.DataFrame:
    """A (small) query result as pandas: quarantine records, per-patient rows."""
    if isinstance(con, SparkTables):
        return con.df(sql, what="OMOP tables")
    return con.execute(sql).df()


def count(con: Tables, sql: str) -> int:
    """The single integer `sql` selects (fetched whole, so the connection is free after)."""
    return int(fetch(con, sql)[0][0])


def register_table(con: Tables, name: str, frame: pd.DataFrame) -> None:
    """Copy a small pandas frame (a rule table) into the database as table `name`."""
    if isinstance(con, SparkTables):
        con.register(name, frame)
        return
    con.register("_frame", frame)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {quote(name)} AS SELECT * FROM _frame")
    finally:
        con.unregister("_frame")


@contextmanager
def omop_connection(memory_limit: str, threads: int) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB database in a temporary folder (so tables can spill to disk), closed and removed after."""
    with tempfile.TemporaryDirectory(prefix="dosewise-omop-") as tmp:
        con = duckdb.connect(":memory:")  # tables beyond the memory limit spill to `tmp`
        try:
            con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute(f"SET threads = {int(threads)}")
            con.execute(f"SET temp_directory = '{tmp}'")
            con.execute("SET preserve_insertion_order = true")
            con.execute("SET enable_progress_bar = false")  # the stage bar is ours; stdout stays clean
            yield con
        finally:
            con.close()


def find_omop_file(source: Path, name: str) -> Path | None:
    """`name`.parquet, .csv.gz or .csv under `source` (first found), else None."""
    for ext in (".parquet", ".csv.gz", ".csv"):
        if (source / f"{name}{ext}").is_file():
            return source / f"{name}{ext}"
    return None


def _scan(path: Path) -> str:
    text = "'" + str(path).replace("'", "''") + "'"
    if path.suffix == ".parquet":
        return f"read_parquet({text})"
    nulls = ", ".join("'" + s + "'" for s in NULL_STRINGS)
    return (
        f"read_csv({text}, all_varchar = true, header = true, delim = ',', quote = '\"', nullstr = [{nulls}])"
    )


def _columns(con: duckdb.DuckDBPyConnection, path: Path, name: str) -> list[str]:
    try:
        return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_scan(path)}").fetchall()]
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0][:200]
        raise BadInputError(
            f"{path} could not be read as OMOP table `{name}`: {reason}.",
            "Check it is a valid csv, csv.gz or parquet file with a header row.",
        ) from None


def checked_table_sql(name: str, typed: dict[str, str], rules: list[RowRule], source: str) -> str:
    """`CREATE TABLE _s_<name>`: typed columns, `_row`, one bit per broken rule and the raw values of
    rows that break any. `source` is a subquery of the raw `r_<col>` columns and `_row`."""
    if len(rules) > 62:  # one bit each in a BIGINT
        raise TypeError(f"must have at most 62 row rules to check {name} in SQL. Got {len(rules)}")
    cast = ", ".join(f"{expr} AS {quote('t_' + c)}" for c, expr in typed.items())
    flags = " + ".join(f"CASE WHEN {r.failing} THEN {1 << i} ELSE 0 END" for i, r in enumerate(rules)) or "0"
    raw_list = ", ".join(f"CAST({quote('r_' + c)} AS VARCHAR)" for c in typed)
    return (
        f"CREATE OR REPLACE TABLE _s_{name} AS SELECT {', '.join(quote('t_' + c) for c in typed)}, _row, "
        f"_flags, CASE WHEN _flags <> 0 THEN [{raw_list}] END AS _raw "
        f"FROM (SELECT *, {flags} AS _flags FROM (SELECT *, {cast} FROM {source}))"
    )


def check_columns(path: Path, name: str, present: list[str]) -> tuple[dict[str, str], list[RowRule]]:
    """The typed expressions and row rules of OMOP table `name`; exit 2 when a required column is missing."""
    schema = OMOP_SCHEMAS[name]
    missing = [c for c, spec in schema.columns.items() if spec.required and c not in present]
    if missing:
        raise MissingSourceTable(
            f"{path} lacks column(s) {', '.join(missing)} of OMOP table `{name}`.",
            f"Use the CDM v5.4 column names; the file has: {', '.join(present[:20])}.",
        )
    return schema_sql(schema, present)


def finish_table(con: Tables, name: str, typed: dict[str, str], rules: list[RowRule],
                 quarantine: list[pd.DataFrame]) -> int:
    """Quarantine records of the rows of `_s_<name>` that break a rule; the view `<name>` of the
    others; rows read."""
    schema = OMOP_SCHEMAS[name]
    names = list(typed)
    bad = frame(con, f"SELECT _flags, _raw FROM _s_{name} WHERE _flags <> 0 ORDER BY _row")
    key = next(iter(schema.columns))
    person = "person_id" if "person_id" in names else None  # kept out of row_key, pseudonymised later
    for i, r in enumerate(rules):  # one record per broken rule of a row
        hit = bad[(bad["_flags"].to_numpy().astype("int64") & (1 << i)) != 0]
        if len(hit):
            raw = pd.DataFrame([list(v) for v in hit["_raw"]], columns=names)
            rows = raw[list(dict.fromkeys([key, *([person] if person else []), r.column]))]
            quarantine.append(
                make_quarantine(
                    rows,
                    stage=f"omop_{name}",
                    rule=r.rule,
                    column=r.column,
                    reason=f"`{r.column}` fails {r.check}",
                    key_columns=[] if key == person else [key],
                    id_column=person,
                )
            )
    cols = ", ".join(f"{quote('t_' + c)} AS {quote(c)}" for c in typed)
    run(con, f"CREATE OR REPLACE VIEW {quote(name)} AS SELECT {cols}, _row FROM _s_{name} WHERE _flags = 0")
    return count(con, f"SELECT count(*) FROM _s_{name}")


def load_table(con: duckdb.DuckDBPyConnection, path: Path, name: str, quarantine: list[pd.DataFrame]) -> int:
    """Check every row of `path` against OMOP_SCHEMAS[name]; create the typed table; rows read."""
    typed, rules = check_columns(path, name, _columns(con, path, name))
    raw = ", ".join(f"{quote(c)} AS {quote('r_' + c)}" for c in typed)
    source = f"(SELECT {raw}, row_number() OVER () AS _row FROM {_scan(path)})"
    try:  # one bit per broken rule; the raw values are kept for the quarantined rows only
        con.execute(checked_table_sql(name, typed, rules, source))
    except duckdb.Error as exc:
        raise BadInputError(
            f"{path} could not be read as OMOP table `{name}`: {str(exc).splitlines()[0][:200]}.",
            "Check the file is complete and every row has the header's number of fields.",
        ) from None
    return finish_table(con, name, typed, rules, quarantine)


def empty_table(con: Tables, name: str) -> None:
    """An empty typed table `name` (an optional OMOP table the folder lacks)."""
    typed, _ = schema_sql(OMOP_SCHEMAS[name], list(OMOP_SCHEMAS[name].columns))
    cols = ", ".join(f"{expr} AS {quote(c)}" for c, expr in typed.items())
    raw = ", ".join(f"NULL::VARCHAR AS {quote('r_' + c)}" for c in typed)
    run(con, f"CREATE OR REPLACE TABLE {quote(name)} AS SELECT {cols}, 0::BIGINT AS _row "
             f"FROM (SELECT {raw}) WHERE false")


TableLoader = Callable[[Any, Path, str, list[pd.DataFrame]], int]


def load_tables(
    con: Tables, source: Path, load: TableLoader = load_table
) -> tuple[list[pd.DataFrame], list[Path], int]:
    """Every needed OMOP table as a checked table (`load`: DuckDB's `load_table`, or Spark's):
    quarantine records, files read, rows read."""
    quarantine: list[pd.DataFrame] = []
    files: list[Path] = []
    n_in = 0
    for name in (*REQUIRED_TABLES, *OPTIONAL_TABLES):
        path = find_omop_file(source, name)
        if path is None:
            if name in REQUIRED_TABLES:
                raise MissingSourceTable(
                    f"{source} has no OMOP `{name}` table ({name}.csv, .csv.gz or .parquet), needed for "
                    f"{TABLE_PURPOSE[name]}.",
                    "Export it with OMOP's lower-case file name beside person.",
                )
            empty_table(con, name)
            continue
        n_in += load(con, path, name, quarantine)
        files.append(path)
    return quarantine, files, n_in
