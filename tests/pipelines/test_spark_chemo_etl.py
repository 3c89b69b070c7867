"""`dosewise etl chemo --engine spark` end to end: the same synthetic OMOP CDM folder (with dirt planted
at every stage that quarantines, and the simulator's truth, so behaviour probabilities are attached)
gives the same cohort, the same row and quarantine counts per stage by rule, the same splits and the
same trajectories, in the same order, as on DuckDB; so does a flat registry export (csv.gz, with
dirt). Trial records on Spark: `test_spark_trial_etl.py`.

Tolerance: the OMOP SQL adds no floats in another order (its sums are per cycle and drug, its medians
are picked values), and the per-patient stages are the same pandas functions on the same rows; floats
are compared to a relative 1e-9 all the same (`test_spark_engine.FLOAT_RTOL`), everything else exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import RunManifest, load_config, read_trajectories
from dosewise.pipelines import ChemoPipelineConfig, config_folder, write_synthetic_oncology

from .chemo_fingerprint import _plant_omop_dirt
from .test_spark_engine import assert_same_table

runner = CliRunner()
N_PATIENTS, SEED = 50, 5
SETTINGS = ["input.unknown_regimen=quarantine", "output.id_salt='spark-chemo-salt-0123456789'",
            "reward.censoring=ipcw_km", "reward.censoring_strata=first_action"]


def _plant_text_dates(src: Path) -> None:
    """Dates Spark would read as the first of the year or month and DuckDB refuses (schema quarantine)."""
    meas = pd.read_csv(src / "measurement.csv", dtype=str, keep_default_na=False)
    meas.loc[20, "measurement_date"] = "2020"
    meas.loc[21, "measurement_date"] = "2020-05"
    meas.to_csv(src / "measurement.csv", index=False)


def _plant_registry_dirt(src: Path) -> None:
    """A grade of 7 (registry schema), an exact duplicate row (cycle rules), an unknown unit (units)."""
    path = src / "registry.csv.gz"
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows.loc[5, "grade_neutropenia"] = "7"
    rows.loc[12, "anc_unit"] = "furlongs"
    pd.concat([rows, rows.iloc[[30]]]).to_csv(path, index=False)


def _run_both(source: Path, config: str, out: Path, settings: list[str]) -> dict[str, Path]:
    """`etl chemo` on `source` once on each engine through the command line (Spark local[2])."""
    outs = {}
    for engine in ("duckdb", "spark"):
        args = ["--quiet", "etl", "chemo", "--source", str(source), "--out", str(out / engine),
                "--config", config, "--engine", engine]
        for setting in settings:
            args += ["--set", setting]
        if engine == "spark":
            args += ["--spark-master", "local[2]"]
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
        outs[engine] = out / engine
    return outs


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One synthetic OMOP folder with dirt, run on each engine."""
    pytest.importorskip("pyspark")
    root = tmp_path_factory.mktemp("chemo_engines")
    write_synthetic_oncology(root / "omop", N_PATIENTS, seed=SEED, fmt="omop", file_format="csv")
    _plant_omop_dirt(root / "omop")
    _plant_text_dates(root / "omop")
    return _run_both(root / "omop", "chemo_omop", root, SETTINGS)


@pytest.fixture(scope="module")
def registry_engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A synthetic flat registry export (csv.gz) with dirt, run on each engine."""
    pytest.importorskip("pyspark")
    root = tmp_path_factory.mktemp("chemo_registry_engines")
    write_synthetic_oncology(root / "registry", 30, seed=SEED, fmt="registry")
    _plant_registry_dirt(root / "registry")
    return _run_both(root / "registry", "chemo_registry", root, ["output.pseudonymize_ids=false"])


def _assert_same_outputs(duck: Path, spark: Path) -> tuple[RunManifest, RunManifest]:
    """The same manifest counts, notes, inputs and contract, and the same files and rows."""
    m_duck, m_spark = RunManifest.read(duck), RunManifest.read(spark)
    assert m_spark.config["engine"] == "spark" and m_duck.config["engine"] == "duckdb"
    assert _stage_counts(m_duck) == _stage_counts(m_spark)
    assert m_duck.extra == m_spark.extra  # notes, filled values, unknown concepts, behaviour
    assert m_duck.inputs == m_spark.inputs and m_duck.dataset == m_spark.dataset
    files = sorted(str(p.relative_to(duck)) for p in duck.rglob("*.parquet"))
    assert files == sorted(str(p.relative_to(spark)) for p in spark.rglob("*.parquet"))
    assert {"trajectories.parquet", "splits.parquet", "cohort.parquet", "quarantine/units.parquet"} \
        <= set(files)
    for name in files:
        a, b = pd.read_parquet(duck / name), pd.read_parquet(spark / name)
        if name == "trajectories.parquet":  # the same rows in the same order
            assert a["episode_id"].tolist() == b["episode_id"].tolist()
            assert a["step"].tolist() == b["step"].tolist()
            assert a["behaviour_prob"].gt(0).all()
        assert_same_table(a, b, name)
    return m_duck, m_spark


def _stage_counts(manifest: RunManifest) -> list[tuple[Any, ...]]:
    return [(s.name, s.rows_in, s.rows_out, s.rows_quarantined, s.quarantined_by_rule)
            for s in manifest.stages]


@pytest.mark.spark
@pytest.mark.slow
def test_both_engines_give_the_same_cohort_quarantine_and_trajectories(both_engines: dict[str, Path]) -> None:
    m_duck, _ = _assert_same_outputs(both_engines["duckdb"], both_engines["spark"])
    sources = {s.name: s for s in m_duck.stages}["sources"].quarantined_by_rule
    assert sources["measurement_date:coerce_dtype('datetime64[ns]')"] == 2  # the text dates, on both
    assert sum(s.rows_quarantined for s in m_duck.stages) >= 20 and m_duck.extra["n_episodes"] >= 40
    assert m_duck.extra["behaviour_prob"].startswith("known")


@pytest.mark.spark
@pytest.mark.slow
def test_both_engines_give_the_same_registry_trajectories(registry_engines: dict[str, Path]) -> None:
    m_duck, _ = _assert_same_outputs(registry_engines["duckdb"], registry_engines["spark"])
    by_stage = {s.name: s.quarantined_by_rule for s in m_duck.stages}
    assert any(rule.startswith("grade_neutropenia:") for rule in by_stage["sources"]), by_stage
    assert by_stage["cycles"].get("duplicate_row") == 1 and by_stage["units"].get("unknown_unit") == 1
    assert m_duck.extra["source_format"] == "registry" and m_duck.extra["behaviour_prob"].startswith("known")


@pytest.mark.spark
@pytest.mark.slow
def test_both_engines_agree_on_typed_parquet_omop(tmp_path: Path) -> None:
    """Parquet columns arrive typed (integers, dates), not as text: the same checks and rows."""
    pytest.importorskip("pyspark")
    src = tmp_path / "omop"
    write_synthetic_oncology(src, 20, seed=SEED + 1, fmt="omop", file_format="parquet")
    person = pd.read_parquet(src / "person.parquet")
    person.loc[2, "year_of_birth"] = 1700  # fails the person schema
    person.to_parquet(src / "person.parquet", index=False)
    meas = pd.read_parquet(src / "measurement.parquet")
    pd.concat([meas, meas.iloc[[3]]]).to_parquet(src / "measurement.parquet", index=False)  # a duplicate
    outs = _run_both(src, "chemo_omop", tmp_path, ["output.pseudonymize_ids=false"])
    m_duck, _ = _assert_same_outputs(outs["duckdb"], outs["spark"])
    sources = {s.name: s for s in m_duck.stages}["sources"].quarantined_by_rule
    assert sources["year_of_birth:in_range(1880, 2100)"] == 1 and sources["duplicate_measurement"] == 1


@pytest.mark.spark
@pytest.mark.slow
def test_spark_chemo_trajectories_read_back_under_the_dataset_contract(both_engines: dict[str, Path]) -> None:
    frame, manifest = read_trajectories(both_engines["spark"], split="train")
    assert len(frame) and manifest.dataset is not None and manifest.dataset.has_behaviour_prob
    assert frame["action"].between(0, manifest.dataset.n_actions - 1).all()


@pytest.mark.spark
def test_rows_are_numbered_in_file_order_across_partitions() -> None:
    pytest.importorskip("pyspark")
    from dosewise.pipelines.chemo.spark_omop import with_row_numbers
    from dosewise.pipelines.sources.spark_engine import SparkSettings, start_session

    spark = start_session(SparkSettings(master="local[2]"))
    values = [f"v{i}" for i in range(23)]
    frame = spark.createDataFrame(spark.sparkContext.parallelize([(v,) for v in values], 4), "value string")
    assert frame.rdd.getNumPartitions() == 4
    numbered = with_row_numbers(frame).orderBy("_row").collect()
    assert [r["_row"] for r in numbered] == list(range(1, 24))
    assert [r["value"] for r in numbered] == values


def test_etl_chemo_refuses_an_unknown_engine(tmp_path: Path) -> None:
    bad = runner.invoke(app, ["etl", "chemo", "--source", str(tmp_path), "--out", str(tmp_path / "o3"),
                              "--engine", "polars"])
    assert bad.exit_code == 2 and "must be duckdb or spark" in bad.output
    assert not (tmp_path / "o3").exists()


def test_a_group_is_restored_to_the_whole_files_dtypes(tmp_path: Path) -> None:
    """A group's text (as Spark reads a csv) parsed back as pandas reads the whole file: an integer
    column with a gap (float in the file), text that looks like a number, missing text."""
    from dosewise.pipelines.chemo.spark_registry import file_dtypes, restore_dtypes

    path = tmp_path / "export.csv"
    path.write_text("id,code,nodes,arm\n1,017,,A\n1,017,5,A\n2,18,3,\n3,X19,2.5,B\n")
    whole = pd.read_csv(path, engine="pyarrow")
    text = pd.read_csv(path, dtype=str, keep_default_na=False).replace("", None)
    group = restore_dtypes(text.iloc[:3], file_dtypes(path), csv=True)
    pd.testing.assert_frame_equal(group, whole.iloc[:3])
    assert group["code"].tolist() == ["017", "017", "18"] and group["nodes"].dtype == "float64"


def test_a_chemo_config_sets_the_engine_and_spark_master() -> None:
    config = load_config("chemo_omop", ChemoPipelineConfig, ["engine='spark'", "spark.master='local[3]'"],
                         search=[config_folder()])
    assert config.engine == "spark" and config.spark.master == "local[3]"
    assert load_config("chemo_omop", ChemoPipelineConfig, [], search=[config_folder()]).engine == "duckdb"
