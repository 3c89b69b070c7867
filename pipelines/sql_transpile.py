"""DuckDB SQL (the dialect of record) -> Spark SQL through sqlglot, with Dosewise's dialect rules.

sqlglot translates most of DuckDB's syntax itself (`range` -> `sequence` with the exclusive end,
`unnest` -> `explode`, `INTERVAL 48 HOUR`, `FILTER (WHERE ...)`, `GROUP BY ALL`). The constructs it
passes through unchanged, which Spark would then reject, are rewritten here on the syntax tree (the
way mimic-code's own transpiler adds rules on top of sqlglot's):

- `first(x ORDER BY k1, k2)` (an ordered aggregate) -> `min_by(x, struct(k1 IS NULL, k1, k2 IS NULL, k2))`:
  the row with the smallest keys, NULL keys last as in DuckDB's default `ASC NULLS LAST`;
- `to_hours(n)` -> `make_dt_interval(0, n)` (n hours as a day-time interval);
- `CAST(x AS state_variable)` (a DuckDB ENUM that saves memory on chart rows) -> `x` (a string);
- `CREATE OR REPLACE TABLE name AS query` -> the engine registers `query` under `name` (on Spark a
  temporary view), so a concept file keeps one statement that runs on both engines.

Anything else DuckDB-only fails with the file and the construct named (`SqlTranspileError`): an
unknown function, a user-defined type, `row_number()` over a window without ORDER BY (Spark refuses
it), or SQL that sqlglot cannot write for Spark or read back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from dosewise.data_schemas import BadInputError

ENUM_TYPES = frozenset({"state_variable"})
# DuckDB functions that sqlglot keeps as-is and that Spark has under the same name and meaning.
SPARK_FUNCTIONS = frozenset({"make_dt_interval", "min_by", "max_by", "struct", "named_struct"})


class SqlTranspileError(BadInputError):
    """A SQL file uses a construct that cannot be written as Spark SQL."""


@dataclass(frozen=True)
class TranspiledStatement:
    """One statement for Spark: the table it creates (None for a plain query) and its SELECT."""

    table: str | None
    sql: str


def _first_ordered(node: Any, where: str) -> Any:
    if not (isinstance(node, exp.First) and isinstance(node.this, exp.Order)):
        return node
    keys: list[Any] = []
    for ordered in node.this.expressions:
        if ordered.args.get("desc") or ordered.args.get("nulls_first"):
            raise SqlTranspileError(
                f"{where}: `{node.sql('duckdb')}` must order ascending with NULLS LAST to run on Spark. "
                "Got DESC or NULLS FIRST.", "Negate the key, or use a window with row_number() instead.")
        key, n = ordered.this, len(keys)
        is_null = exp.Is(this=key.copy(), expression=exp.Null())
        keys += [exp.alias_(is_null, f"k{n}"), exp.alias_(key.copy(), f"k{n + 1}")]
    return exp.Anonymous(this="min_by", expressions=[node.this.this.copy(),
                                                     exp.Anonymous(this="struct", expressions=keys)])


FIX = "Use a portable construct, or add a rule in pipelines/sql_transpile.py."
ONE_STATEMENT = "Make the file one `CREATE OR REPLACE TABLE name AS query`."


def _rewrite(node: Any, where: str) -> Any:
    """Dosewise's DuckDB -> Spark rules for one node of the tree (see the module docstring)."""
    if isinstance(node, exp.First):
        return _first_ordered(node, where)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "to_hours":
        return exp.Anonymous(this="make_dt_interval", expressions=[exp.Literal.number(0), *node.expressions])
    if (isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.USERDEFINED
            and node.to.args.get("kind", "").lower() in ENUM_TYPES):
        return node.this.copy()
    return node


def _check(tree: Any, where: str) -> None:
    for window in tree.find_all(exp.Window):
        if isinstance(window.this, exp.RowNumber) and not window.args.get("order"):
            raise SqlTranspileError(
                f"{where}: `{window.sql('duckdb')[:80]}` has no ORDER BY; Spark refuses it and DuckDB "
                "numbers the rows in any order.", "Order the window by the columns that pick the row.")
    for func in tree.find_all(exp.Anonymous):
        if func.name.lower() not in SPARK_FUNCTIONS:
            raise SqlTranspileError(
                f"{where}: function `{func.name}` (in `{func.sql('duckdb')[:80]}`) is DuckDB-only or unknown "
                "to sqlglot; it would not run on Spark.", FIX)
    for dtype in tree.find_all(exp.DataType):
        if dtype.this == exp.DataType.Type.USERDEFINED:
            raise SqlTranspileError(f"{where}: type `{dtype.sql('duckdb')}` is a DuckDB user-defined type.",
                                    "Cast to a standard type, or list it in ENUM_TYPES.")


def _transpile_tree(tree: Any, where: str) -> TranspiledStatement:
    if isinstance(tree, exp.Command):
        raise SqlTranspileError(f"{where}: only `CREATE [OR REPLACE] TABLE name AS query` or a query runs on "
                                f"Spark. Got `{tree.sql('duckdb')[:80]}`.", ONE_STATEMENT)
    table = None
    if isinstance(tree, exp.Create):
        if tree.args.get("kind") not in ("TABLE", "VIEW") or not isinstance(tree.expression, exp.Query):
            raise SqlTranspileError(f"{where}: only `CREATE [OR REPLACE] TABLE name AS query` runs on Spark. "
                                    f"Got `{tree.sql('duckdb')[:80]}`.", ONE_STATEMENT)
        table, tree = tree.this.name, tree.expression
    tree = tree.transform(lambda node: _rewrite(node, where))
    _check(tree, where)
    raising = ErrorLevel.RAISE
    try:
        spark = tree.sql(dialect="spark", unsupported_level=raising)
        again = sqlglot.parse_one(spark, read="spark").sql(dialect="spark", unsupported_level=raising)
    except SqlglotError as exc:
        message = f"{where}: sqlglot cannot write this SQL for Spark: {str(exc)[:300]}"
        raise SqlTranspileError(message, FIX) from exc
    if again != spark:
        raise SqlTranspileError(f"{where}: the Spark SQL does not read back the same (a construct sqlglot "
                                "cannot round-trip).", FIX)
    return TranspiledStatement(table, spark)


def transpile_script(sql: str, where: str) -> list[TranspiledStatement]:
    """Every statement of a DuckDB SQL script, as Spark SQL (comments dropped); `where` (the file's
    name) leads every error message."""
    try:
        parsed = sqlglot.parse(sql, read="duckdb", error_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise SqlTranspileError(f"{where}: DuckDB SQL does not parse: {str(exc)[:300]}",
                                "Fix the SQL file.") from exc
    return [_transpile_tree(s, where) for s in parsed if s is not None]


def transpile_statement(sql: str, where: str) -> TranspiledStatement:
    """One DuckDB statement as Spark SQL (see `transpile_script`)."""
    statements = transpile_script(sql, where)
    if len(statements) != 1:
        raise SqlTranspileError(f"{where}: must hold one statement. Got {len(statements)}.", ONE_STATEMENT)
    return statements[0]


__all__ = ["SqlTranspileError", "TranspiledStatement", "transpile_script", "transpile_statement"]
