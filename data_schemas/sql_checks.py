"""A pandera boundary schema as SQL: typed columns and one failure predicate per row-wise rule.

Large inputs are validated inside DuckDB instead of as whole pandas frames, but the schema stays
the single source of truth: `schema_sql` reads the same `pa.DataFrameSchema` that `split_valid`
uses and turns each of its row-wise rules into a predicate over the raw column, with pandera's
rule names (`person_id:field_uniqueness`, `year_of_birth:in_range(1880, 2100)`, ...), so the
quarantine reads the same whichever engine checked the rows. Every row is checked by every rule.

Rules it translates: dtype coercion (a value that cannot be cast is `col:coerce_dtype('<dtype>')`;
a non-integral number is not an integer, where pandas would truncate it), `nullable`, `unique`
and the range / comparison / `isin` checks. A schema with any other check raises `TypeError`,
so nothing is skipped silently. pandera also reports a failed coercion as `dtype('<dtype>')`;
here each broken rule of a row is one quarantine record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandera.pandas as pa

SQL_TYPES = {
    "int64": "BIGINT",
    "Int64": "BIGINT",
    "float64": "DOUBLE",
    "datetime64[ns]": "DATE",
    "str": "VARCHAR",
    "string": "VARCHAR",
    "string[pyarrow]": "VARCHAR",
    "string[python]": "VARCHAR",
}


@dataclass(frozen=True)
class RowRule:
    """One row-wise rule: its pandera-style name, the column it is about, and its failure predicate."""

    column: str
    check: str
    failing: str  # SQL predicate over the raw (r_*) and typed (t_*) columns, true where a row breaks it

    @property
    def rule(self) -> str:
        """`column:check`, as `split_valid` names it."""
        return f"{self.column}:{self.check}"


def quote(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL literal for a number or a string."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"must be a number or a string to compare in SQL. Got {value!r}")
    return repr(value)


def typed_expr(raw: str, dtype: str) -> str:
    """`raw` cast to the schema dtype; NULL where it cannot be (NaN counts as missing)."""
    sql = SQL_TYPES.get(dtype)
    if sql is None:
        raise TypeError(f"must be one of {sorted(SQL_TYPES)} to check in SQL. Got dtype {dtype}")
    if sql == "BIGINT":  # integral values only: '1.5' is not an id
        as_float = f"TRY_CAST({raw} AS DOUBLE)"
        # ids above 2**53 stay exact
        exact = f"coalesce(TRY_CAST({raw} AS BIGINT), TRY_CAST({as_float} AS BIGINT))"
        return f"CASE WHEN {as_float} = TRY_CAST({as_float} AS BIGINT) THEN {exact} END"
    if sql == "DOUBLE":
        return f"CASE WHEN NOT isnan(TRY_CAST({raw} AS DOUBLE)) THEN TRY_CAST({raw} AS DOUBLE) END"
    if sql == "DATE":
        return f"TRY_CAST({raw} AS DATE)"
    return f"CAST({raw} AS VARCHAR)"


def _check_sql(check: pa.Check, value: str) -> str:
    """Predicate true where `value` (typed, not NULL) passes `check`."""
    s = check.statistics or {}
    if check.name == "in_range":
        low = ">=" if s.get("include_min", True) else ">"
        high = "<=" if s.get("include_max", True) else "<"
        return f"({value} {low} {literal(s['min_value'])} AND {value} {high} {literal(s['max_value'])})"
    ops = {
        "greater_than_or_equal_to": (">=", "min_value"),
        "greater_than": (">", "min_value"),
        "less_than_or_equal_to": ("<=", "max_value"),
        "less_than": ("<", "max_value"),
        "equal_to": ("=", "value"),
        "not_equal_to": ("<>", "value"),
    }
    if check.name in ops:
        op, key = ops[check.name]
        return f"({value} {op} {literal(s[key])})"
    if check.name == "isin":
        return f"({value} IN ({', '.join(literal(v) for v in s['allowed_values'])}))"
    raise TypeError(
        f"must be a check that `schema_sql` translates (in_range, comparisons, isin). Got {check}; "
        "validate this table with `split_valid` instead."
    )


def schema_sql(schema: pa.DataFrameSchema, present: list[str]) -> tuple[dict[str, str], list[RowRule]]:
    """Typed SQL expression per schema column present (over `r_<col>`), and every row-wise rule.

    Raw columns are referenced as `r_<col>` and typed ones as `t_<col>`; `present` lists the
    schema columns the input has (missing required ones are the caller's error to raise).
    """
    if schema.checks or schema.unique:
        raise TypeError(f"must have column checks only to check {schema.name} in SQL. Got table-wide checks")
    typed: dict[str, str] = {}
    rules: list[RowRule] = []
    for name, col in schema.columns.items():
        if name not in present:
            continue
        dtype = str(col.dtype)
        raw, t = quote(f"r_{name}"), quote(f"t_{name}")
        typed[name] = typed_expr(raw, dtype)
        if not col.nullable:
            rules.append(RowRule(name, "not_nullable", f"{raw} IS NULL"))
        rules.append(RowRule(name, f"coerce_dtype('{dtype}')", f"({raw} IS NOT NULL AND {t} IS NULL)"))
        if col.unique:
            window = f"count(*) OVER (PARTITION BY {t})"
            rules.append(RowRule(name, "field_uniqueness", f"({t} IS NOT NULL AND {window} > 1)"))
        for check in col.checks:
            rules.append(RowRule(name, str(check.error), f"({t} IS NOT NULL AND NOT {_check_sql(check, t)})"))
    return typed, rules
