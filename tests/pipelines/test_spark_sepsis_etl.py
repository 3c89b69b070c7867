"""`dosewise etl sepsis --engine spark` end to end: the same synthetic MIMIC-IV gives the same cohort,
the same row and quarantine counts per stage and the same trajectories as on DuckDB.

Tolerance: every sum the stages make is exact (DECIMAL in the SQL), but the train medians (fill
values) and the dose quantiles (action edges) are interpolated by Spark's `percentile` in another
float order than numpy's, and means may add in another order on Spark's partitions: floats agree
to a relative 1e-9 (FLOAT_RTOL), everything else exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import RunManifest, read_trajectories
from dosewise.pipelines.simulators.synthetic_icu import write_synthetic_icu

from .test_spark_engine import FLOAT_RTOL, assert_same_table

runner = CliRunner()
N_STAYS, SEED = 40, 5


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One synthetic source, run once on each engine through the command line (local[2])."""
    pytest.importorskip("pyspark")
    root = tmp_path_factory.mktemp("engines")
    write_synthetic_icu(root / "src", N_STAYS, seed=SEED, show_progress=False)
    outs = {}
    for engine in ("duckdb", "spark"):
        args = ["--quiet", "etl", "sepsis", "--source", str(root / "src"), "--out", str(root / engine),
                "--engine", engine, "--set", "output.pseudonymize_ids=false"]
        if engine == "spark":
            args += ["--spark-master", "local[2]"]
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
        outs[engine] = root / engine
    return outs


def _read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(folder / name)


def assert_same_outputs(duck: Path, spark: Path) -> None:
    """The DuckDB and Spark runs agree: stage counts, funnel, manifest figures, every parquet file."""
    m_duck, m_spark = RunManifest.read(duck), RunManifest.read(spark)
    assert m_spark.config["engine"] == "spark" and m_duck.config["engine"] == "duckdb"
    # rows in, rows out and quarantined rows by rule, stage by stage; the funnel
    counts = [[(s.name, s.rows_in, s.rows_out, s.rows_quarantined, s.quarantined_by_rule)
               for s in m.stages] for m in (m_duck, m_spark)]
    assert counts[0] == counts[1]
    assert [f.model_dump() for f in m_duck.funnel] == [f.model_dump() for f in m_spark.funnel]
    assert m_duck.extra["n_episodes"] >= 3 and sum(s.rows_quarantined for s in m_duck.stages) > 0
    assert m_duck.inputs == m_spark.inputs
    assert m_duck.dataset is not None and m_spark.dataset is not None
    assert m_duck.dataset.state_columns == m_spark.dataset.state_columns
    for col, edges in m_duck.dataset.action_bin_edges.items():
        assert edges == pytest.approx(m_spark.dataset.action_bin_edges[col], rel=FLOAT_RTOL)
    for key in ("fill_values", "filled_fraction"):
        assert m_duck.extra[key] == pytest.approx(m_spark.extra[key], rel=FLOAT_RTOL), key
    for key in ("fluid_ml_binned", "fluid_ml_in_window_kept", "weight_fallback", "care_systems"):
        assert m_duck.extra[key] == m_spark.extra[key], key
    # the same files, the same rows; the trajectories in the same order
    files = sorted(str(p.relative_to(duck)) for p in duck.rglob("*.parquet"))
    assert files == sorted(str(p.relative_to(spark)) for p in spark.rglob("*.parquet"))
    for name in files:
        a, b = _read(duck, name), _read(spark, name)
        if name in ("trajectories.parquet", "imputed_mask.parquet"):
            assert a["episode_id"].tolist() == b["episode_id"].tolist(), name
            assert a["step"].tolist() == b["step"].tolist(), name
        assert_same_table(a, b, name)


@pytest.mark.spark
@pytest.mark.slow
def test_both_engines_give_the_same_cohort_counts_and_trajectories(both_engines: dict[str, Any]) -> None:
    assert_same_outputs(both_engines["duckdb"], both_engines["spark"])


@pytest.mark.spark
@pytest.mark.slow
def test_spark_trajectories_read_back_under_the_dataset_contract(both_engines: dict[str, Any]) -> None:
    frame, manifest = read_trajectories(both_engines["spark"], split="train")
    assert len(frame) and manifest.dataset is not None
    assert frame["action"].between(0, manifest.dataset.n_actions - 1).all()


def test_a_run_config_sets_the_etl_engine_and_spark_master() -> None:
    from dosewise.app.pipeline.config import load_pipeline_config
    from dosewise.app.pipeline.stages import ResolvedConfigs

    config = load_pipeline_config("pipeline_sepsis_mimic4", [
        "source.path='/data/mimic-iv'", "etl.engine='spark'", "etl.spark={master='local[3]'}",
        "etl.settings={spark={conf={'spark.executor.memory'='4g'}}}"])
    etl = ResolvedConfigs.of(config).etl
    assert etl.engine == "spark" and etl.spark.master == "local[3]"
    assert etl.spark.conf == {"spark.executor.memory": "4g"}
    shipped = ResolvedConfigs.of(load_pipeline_config("pipeline_sepsis_mimic4", ["source.path='/x'"])).etl
    assert shipped.engine == "duckdb"


def test_etl_sepsis_refuses_an_unknown_engine_and_spark_without_java(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyspark")
    write_synthetic_icu(tmp_path / "src", 3, seed=1, show_progress=False)
    base = ["etl", "sepsis", "--source", str(tmp_path / "src"), "--out", str(tmp_path / "o"),
            "--set", "output.pseudonymize_ids=false"]
    bad = runner.invoke(app, [*base, "--engine", "polars"])
    assert bad.exit_code == 2 and "must be duckdb or spark" in bad.output
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))  # a JAVA_HOME without bin/java
    java = runner.invoke(app, [*base, "--engine", "spark"])
    assert java.exit_code == 2 and "needs Java" in java.output and "openjdk-17" in java.output
    assert not (tmp_path / "o" / "manifest.json").exists()
