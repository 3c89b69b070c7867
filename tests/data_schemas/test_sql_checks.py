"""`schema_sql`: a pandera schema checked in DuckDB quarantines the rows pandera's `split_valid` does."""

from __future__ import annotations

import duckdb
import pandas as pd
import pandera.pandas as pa
import pytest

from dosewise.data_schemas.raw_omop import OMOP_SCHEMAS
from dosewise.data_schemas.sql_checks import quote, schema_sql
from dosewise.data_schemas.validation import split_valid


def _sql_failures(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> dict[str, set[int]]:
    """Rule -> row positions that break it, checked in DuckDB over the frame as text."""
    typed, rules = schema_sql(schema, list(frame.columns))
    raw = frame.astype(object).where(frame.notna(), None).astype(str).where(frame.notna(), None)
    raw = raw.rename(columns={c: f"r_{c}" for c in raw.columns}).reset_index(names="_pos")
    con = duckdb.connect()
    con.register("raw", raw)
    cast = ", ".join(f"{expr} AS {quote('t_' + c)}" for c, expr in typed.items())
    flags = ", ".join(f"{r.failing} AS _f{i}" for i, r in enumerate(rules))
    got = con.execute(f"SELECT _pos, {flags} FROM (SELECT *, {cast} FROM raw)").df()
    return {r.rule: set(got.loc[got[f"_f{i}"], "_pos"]) for i, r in enumerate(rules) if got[f"_f{i}"].any()}


def _pandera_failures(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> dict[str, set[int]]:
    q = split_valid(frame, schema, stage="s", key_columns=["_pos"]).quarantined
    if q.empty:
        return {}
    q = q[~q["rule"].str.contains(r":dtype\(")]  # pandera also reports a failed coercion as dtype(...)
    return {rule: {int(k.removeprefix("_pos=")) for k in g["row_key"]} for rule, g in q.groupby("rule")}


def test_person_rules_quarantine_the_rows_pandera_does() -> None:
    schema = OMOP_SCHEMAS["person"]
    frame = pd.DataFrame(
        {
            "person_id": ["1", "2", "2", "4", "5", "6"],
            "gender_concept_id": ["8507", "x", "8532", None, "8507", "8532"],
            "year_of_birth": ["1950", "1960", "1970", "1700", "1980", "1990"],
            "month_of_birth": ["1", None, "3", "4", "abc", "6"],
        }
    )
    sql = _sql_failures(frame, schema)
    pandas = _pandera_failures(
        frame.assign(_pos=range(len(frame))), schema.add_columns({"_pos": pa.Column(int)})
    )
    assert sql == pandas
    assert sql["person_id:field_uniqueness"] == {1, 2}
    assert sql["year_of_birth:in_range(1880, 2100)"] == {3}
    assert sql["gender_concept_id:coerce_dtype('Int64')"] == {1}


def test_a_non_integral_id_is_not_truncated() -> None:
    frame = pd.DataFrame(
        {
            "person_id": ["1", "1.5", "2.0", None],
            "death_date": ["2020-01-01", "2020-02-30", "2020-03-01", "2020-04-01"],
        }
    )
    sql = _sql_failures(frame, OMOP_SCHEMAS["death"])
    assert sql == {
        "person_id:coerce_dtype('int64')": {1},
        "person_id:not_nullable": {3},
        "death_date:coerce_dtype('datetime64[ns]')": {1},
    }


def test_a_check_it_cannot_translate_is_an_error_not_a_skip() -> None:
    schema = pa.DataFrameSchema({"x": pa.Column(float, pa.Check(lambda s: s > 0))})
    with pytest.raises(TypeError, match="schema_sql"):
        schema_sql(schema, ["x"])
