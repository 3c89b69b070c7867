"""Every concept SQL file transpiles DuckDB -> Spark SQL (sqlglot, unsupported constructs raise) and
reads back the same; DuckDB-only constructs are rewritten or refused with the file and construct named."""

from __future__ import annotations

from importlib.resources import files

import pytest

from dosewise.pipelines.sql_transpile import SqlTranspileError, transpile_script, transpile_statement

SQL_ROOT = files("dosewise.pipelines") / "sql"
SQL_FILES = sorted(f"{folder.name}/{entry.name}" for folder in SQL_ROOT.iterdir() if folder.is_dir()
                   for entry in folder.iterdir() if entry.name.endswith(".sql"))


def test_the_sql_folder_is_not_empty() -> None:
    assert len(SQL_FILES) >= 20


@pytest.mark.parametrize("name", SQL_FILES)
def test_every_sql_file_transpiles_to_spark(name: str) -> None:
    statements = transpile_script((SQL_ROOT / name).read_text(encoding="utf-8"), name)
    assert [s.table for s in statements] == [name.split("/")[1].removesuffix(".sql")]
    spark = statements[0].sql.lower()
    for duckdb_only in ("to_hours(", "state_variable", "first(", "create or replace", "unnest(", "range("):
        assert duckdb_only not in spark, f"{name}: `{duckdb_only}` survived into the Spark SQL"


def test_ordered_first_becomes_min_by_with_nulls_last() -> None:
    out = transpile_statement("SELECT first(x ORDER BY a, b) AS x FROM t GROUP BY g", "f.sql").sql
    assert out == ("SELECT MIN_BY(x, STRUCT(a IS NULL AS k0, a AS k1, b IS NULL AS k2, b AS k3)) AS x "
                   "FROM t GROUP BY g")


def test_to_hours_and_enum_cast_are_rewritten() -> None:
    out = transpile_statement("SELECT t + to_hours(h), CAST(v AS state_variable) AS v FROM x", "f.sql").sql
    assert out == "SELECT t + MAKE_DT_INTERVAL(0, h), v AS v FROM x"


def test_create_or_replace_table_becomes_a_named_query() -> None:
    st = transpile_statement("CREATE OR REPLACE TABLE s AS SELECT range(0, 3) AS r", "s.sql")
    assert (st.table, st.sql) == ("s", "SELECT SEQUENCE(0, 2) AS r")


@pytest.mark.parametrize(("sql", "construct"), [
    ("SELECT list_distinct_foo(x) FROM t", "function `list_distinct_foo`"),
    ("SELECT CAST(x AS mood) FROM t", "type `mood`"),
    ("SELECT first(x ORDER BY a DESC) FROM t", "must order ascending with NULLS LAST"),
    ("CREATE TYPE mood AS ENUM ('a', 'b')", "only `CREATE [OR REPLACE] TABLE name AS query`"),
    ("SELECT FROM WHERE (", "does not parse"),
    ("SELECT row_number() OVER (PARTITION BY k) AS n FROM t", "has no ORDER BY"),
])
def test_a_construct_that_does_not_transpile_names_file_and_construct(sql: str, construct: str) -> None:
    with pytest.raises(SqlTranspileError) as info:
        transpile_script(sql, "pipelines/sql/common/broken.sql")
    assert info.value.message.startswith("pipelines/sql/common/broken.sql: ")
    assert construct in info.value.message
