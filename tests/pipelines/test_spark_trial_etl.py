"""Trial records (mapping `design = "trial"`) on `--engine spark`: the real NCCTG colon and AML myeloid
records from ../shared/data/r-clinical-datasets, with dirt planted, give the same manifest counts and
notes and byte-identical trajectories, splits, cohort and quarantine files as on DuckDB.

The colon file is the real one's text (integers, and columns such as `nodes` with missing values,
which pandas reads as float for the whole file but a group of patients holds as integers with gaps).
The export's rows are reshaped per group of patients on Spark (`spark_trial.py`); the records then go
through the same functions as on DuckDB, so nothing is compared with a tolerance. The dirt reaches every
rule the trial reading has: a row outside the row filter, a repeated pivot key, a patient without his
death row (the pivot makes that column float for the whole file, on both engines), a record failing two
schema checks, a patient id given twice, and a missing arm column (exit 2, the same message).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import RunManifest

runner = CliRunner()
SALT = "output.id_salt='spark-trial-salt-0123456789'"


def _etl(source: Path, config: str, out: Path, engine: str) -> tuple[int, str]:
    args = ["--quiet", "etl", "chemo", "--source", str(source), "--out", str(out), "--config", config,
            "--engine", engine, "--set", SALT]
    if engine == "spark":
        args += ["--spark-master", "local[2]"]
    done = runner.invoke(app, args)
    return done.exit_code, " ".join(done.output.split())


def _both(source: Path, config: str, root: Path) -> tuple[RunManifest, RunManifest]:
    """Both engines on `source`; the same counts, notes, inputs and contract, the same bytes."""
    for engine in ("duckdb", "spark"):
        code, text = _etl(source, config, root / engine, engine)
        assert code == 0, text
    duck, spark = RunManifest.read(root / "duckdb"), RunManifest.read(root / "spark")
    assert spark.config["engine"] == "spark"
    assert [s.model_dump(exclude={"seconds"}) for s in duck.stages] == \
        [s.model_dump(exclude={"seconds"}) for s in spark.stages]
    assert duck.extra == spark.extra and duck.inputs == spark.inputs and duck.dataset == spark.dataset
    files = sorted(str(p.relative_to(root / "duckdb")) for p in (root / "duckdb").rglob("*.parquet"))
    assert files == sorted(str(p.relative_to(root / "spark")) for p in (root / "spark").rglob("*.parquet"))
    for name in files:
        assert (root / "duckdb" / name).read_bytes() == (root / "spark" / name).read_bytes(), name
    return duck, spark


def _counts(manifest: RunManifest) -> dict[str, dict[str, int]]:
    return {s.name: s.quarantined_by_rule for s in manifest.stages}


@pytest.mark.spark
@pytest.mark.slow
def test_colon_records_with_dirt_are_the_same_on_both_engines(trials_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    # as text, so that the file keeps its own spelling ("5", not "5.0"; missing as empty)
    raw = pd.read_csv(trials_dir / "survival_colon.csv.gz", dtype=str, keep_default_na=False)
    other_study = raw.iloc[[10]].assign(study="2")  # outside the row filter
    repeated = raw.iloc[[20]]  # a second (id, etype) row: the patient's rows are quarantined
    no_death = (raw["id"] == raw["id"].iloc[40]) & (raw["etype"] == "2")  # recurrence row only
    broken = raw["id"] == raw["id"].iloc[60]
    raw.loc[broken, ["age", "sex"]] = ["-4", "7"]  # two schema checks, one record
    dirty = pd.concat([raw[~no_death], other_study, repeated]).sample(frac=1.0, random_state=3)
    src = tmp_path / "src"
    src.mkdir()
    dirty.to_csv(src / "survival_colon.csv.gz", index=False)
    duck, _ = _both(src, "registry_colon", tmp_path)
    counts = _counts(duck)
    assert counts["sources"] == {"row_filter": 1, "pivot_repeated_key": 3}
    assert set(counts["records"]) >= {"age_years:in_range(0, 120)", "sex:isin(['M', 'F'])"}
    records = next(s for s in duck.stages if s.name == "records")
    assert records.rows_in == raw["id"].nunique() - 1  # the repeated patient left at the pivot
    traj = pd.read_parquet(tmp_path / "spark" / "trajectories.parquet")
    assert traj["behaviour_prob"].eq(1 / 3).all() and duck.extra["n_episodes"] >= 900


@pytest.mark.spark
@pytest.mark.slow
def test_myeloid_parquet_with_a_repeated_patient_is_the_same_on_both_engines(
    trials_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("pyspark")
    raw = pd.read_csv(trials_dir / "survival_myeloid.csv.gz")
    src = tmp_path / "src"
    src.mkdir()
    pd.concat([raw, raw.iloc[[7]]]).to_parquet(src / "survival_myeloid.parquet", index=False)
    duck, _ = _both(src, "registry_myeloid", tmp_path)
    assert _counts(duck)["records"] == {"duplicate_patient": 2}
    assert duck.extra["n_episodes"] == len(raw) - 1
    assert duck.extra["stage_action_labels"] == [["A", "B"], ["no_transplant", "transplant"]]
    steps = pd.read_parquet(tmp_path / "spark" / "trajectories.parquet").groupby("episode_id").size()
    assert set(steps) == {1, 2}


@pytest.mark.spark
def test_a_missing_arm_column_exits_2_on_spark_as_on_duckdb(trials_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    src = tmp_path / "src"
    src.mkdir()
    pd.read_csv(trials_dir / "survival_colon.csv.gz").head(40).drop(columns="rx").to_csv(
        src / "survival_colon.csv.gz", index=False)
    answers = {e: _etl(src, "registry_colon", tmp_path / e, e) for e in ("duckdb", "spark")}
    assert answers["spark"] == answers["duckdb"]
    code, text = answers["spark"]
    assert code == 2 and "no arm column" in text and "`rx` renamed to `arm`" in text
    assert not (tmp_path / "spark").exists()
