"""The sepsis ETL as declared stages: the outputs are the same, table by table and bit by bit, as
those of the ETL before it was split into stages (`sepsis_fingerprint.json`, computed from main
before the change), and the stage list is consistent with the SQL files it names."""

from __future__ import annotations

import importlib
import json
import re
from importlib.resources import files
from pathlib import Path

import duckdb
import pytest

from dosewise.pipelines.sepsis.pipeline import STAGES
from dosewise.pipelines.sepsis.stage_runs import STAGE_RUNS
from dosewise.pipelines.sepsis.stage_sql import run_sql_file, stage_sql
from dosewise.pipelines.sepsis.stages import SEPSIS_STAGES, STAGE_NAMES

from .sepsis_fingerprint import CASES, REFERENCE, run_case, write_source

SQL_DIR = files("dosewise.pipelines") / "sql" / "sepsis"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_source(tmp_path_factory.mktemp("fingerprint") / "src")


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_are_identical_to_the_reference(source: Path, tmp_path: Path, case: str) -> None:
    expected = json.loads(REFERENCE.read_text())[case]
    found = json.loads(json.dumps(run_case(source, case, tmp_path / "out")))
    assert found["stages"] == expected["stages"]
    assert found["funnel"] == expected["funnel"]
    tables = expected["tables"]
    changed = sorted(name for name in tables if found["tables"].get(name) != tables[name])
    assert not changed, f"{case}: these outputs changed: {changed}"
    assert found["tables"].keys() == expected["tables"].keys()


def test_the_stage_list_names_its_modules_and_declares_every_table_it_reads() -> None:
    assert STAGES == STAGE_NAMES == tuple(STAGE_RUNS)  # one function per declared stage, same order
    made: set[str] = set()
    listed: list[str] = []
    for stage in SEPSIS_STAGES:
        assert stage.module.rsplit(".", 1)[-1] == stage.name
        importlib.import_module(f"dosewise.pipelines.{stage.module}")
        for table in stage.sql:
            item = stage_sql(table)
            for key in ("title", "reference", "units", "requires", "depends", "params"):
                assert f"-- {key}:" in item.sql, f"sepsis/{table}.sql lacks a `{key}` header"
            assert table in stage.makes
            unknown = [t for t in item.depends if t not in made and not t.startswith("rule_")]
            assert not unknown, f"{stage.name}: {table}.sql reads {unknown}, made by no earlier stage"
            assert set(item.depends) <= {*stage.reads, *stage.sql, *made}
            assert sorted(set(re.findall(r"\$(\w+)", item.sql))) == sorted(item.params), table
            made.add(table)
        made.update(stage.makes)
        listed += stage.sql
    on_disk = sorted(e.name.removesuffix(".sql") for e in SQL_DIR.iterdir() if e.name.endswith(".sql"))
    assert sorted(listed) == on_disk  # every stage SQL file belongs to exactly one stage


def test_a_missing_setting_is_named() -> None:
    con = duckdb.connect()
    with pytest.raises(KeyError, match=r"window_events\.sql needs the settings \['bin_seconds'\]"):
        run_sql_file(con, "window_events", {})
