"""The chemotherapy ETL run in declared stages and patient batches: the outputs are the same, table
by table and bit by bit, as those of the reference (`chemo_fingerprint.json`), whatever the batch
size, and the stage list is consistent with the SQL files it names."""

from __future__ import annotations

import importlib
import json
import re
import shutil
from importlib.resources import files
from pathlib import Path

import pandas as pd
import pytest

from dosewise.data_schemas import columns as c
from dosewise.pipelines import ChemoPipelineConfig, run_chemo_pipeline
from dosewise.pipelines.chemo.run_state import STAGES
from dosewise.pipelines.chemo.stages import CHEMO_STAGES, SQL_FOLDER, STAGE_NAMES
from dosewise.pipelines.sepsis.stage_sql import stage_sql

from .chemo_fingerprint import CASES, REFERENCE, run_case, write_sources

SQL_DIR = files("dosewise.pipelines") / "sql" / SQL_FOLDER

#: (case, extra overrides): each case as configured, and the OMOP cases in batches of 7 patients
RUNS = [(name, []) for name in sorted(CASES)] + [
    (name, ["input.batch_patients=7"]) for name in sorted(CASES) if name.startswith("omop")
]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sources(tmp_path_factory.mktemp("chemo_fingerprint") / "src")


@pytest.mark.parametrize(("case", "extra"), RUNS, ids=[f"{n}{'-batched' if e else ''}" for n, e in RUNS])
def test_outputs_are_identical_to_the_reference(
    sources: Path, tmp_path: Path, case: str, extra: list[str]
) -> None:
    expected = json.loads(REFERENCE.read_text())[case]
    found = json.loads(json.dumps(run_case(sources, case, tmp_path / "out", extra)))
    assert found["stages"] == expected["stages"]
    tables = expected["tables"]
    changed = sorted(name for name in tables if found["tables"].get(name) != tables[name])
    assert not changed, f"{case} {extra}: these outputs changed: {changed}"
    assert found["tables"].keys() == expected["tables"].keys()


def test_the_stage_list_names_its_modules_and_declares_every_table_it_reads() -> None:
    assert STAGES == STAGE_NAMES
    for case in json.loads(REFERENCE.read_text()).values():  # the manifests' stage records, in order
        assert [s[0] for s in case["stages"]] == list(STAGE_NAMES)
    made: set[str] = set()
    listed: list[str] = []
    for stage in CHEMO_STAGES:
        assert stage.module.rsplit(".", 1)[-1] == stage.name
        importlib.import_module(f"dosewise.pipelines.{stage.module}")
        for table in stage.sql:
            item = stage_sql(table, SQL_FOLDER)
            for key in ("title", "reference", "units", "requires", "depends", "params"):
                assert f"-- {key}:" in item.sql, f"chemo/{table}.sql lacks a `{key}` header"
            assert table in stage.makes
            unknown = [t for t in item.depends
                       if t not in {*made, *stage.makes} and not t.startswith("rule_")]
            assert not unknown, f"{stage.name}: {table}.sql reads {unknown}, made by no stage before it"
            assert sorted(set(re.findall(r"\$(\w+)", item.sql))) == sorted(item.params), table
            made.add(table)
        made.update(stage.makes)
        listed += stage.sql
    on_disk = sorted(e.name.removesuffix(".sql") for e in SQL_DIR.iterdir() if e.name.endswith(".sql"))
    assert sorted(listed) == on_disk  # every chemo SQL file belongs to exactly one stage


def test_ipcw_censoring_is_fitted_on_all_patients_not_per_batch(sources: Path, tmp_path: Path) -> None:
    src = tmp_path / "censored"
    shutil.copytree(sources / "omop", src)
    obs = pd.read_csv(src / "observation.csv", dtype=str, keep_default_na=False)
    lost = (obs["observation_source_value"] == "last_followup") & (obs["person_id"].astype(int) % 3 == 0)
    obs.loc[lost, "observation_date"] = (pd.to_datetime(obs.loc[lost, "observation_date"])
                                         - pd.Timedelta(days=150)).dt.strftime("%Y-%m-%d")
    obs.to_csv(src / "observation.csv", index=False)
    frames = []
    for batch in (100_000, 7):
        settings = {"output": {"id_salt": "censor-salt-0123456789"}, "reward": {"censoring": "ipcw_km"},
                    "input": {"batch_patients": batch, "unknown_regimen": "quarantine"}}
        out = tmp_path / f"out{batch}"
        run_chemo_pipeline(ChemoPipelineConfig(**settings), src, out, show_progress=False)
        frames.append(pd.read_parquet(out / "trajectories.parquet"))
    assert frames[0][c.REWARD].max() > 1.0  # some outcome rewards were divided by G < 1
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
