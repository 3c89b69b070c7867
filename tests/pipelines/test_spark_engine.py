"""`--engine spark`: the concept SQL on Spark local[2] (transpiled by sqlglot) gives DuckDB's tables;
missing Java/pyspark and an unreachable master are refused in seconds with what to do."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import BadInputError
from dosewise.pipelines.concepts import write_concept_tables
from dosewise.pipelines.sepsis.config import SepsisPipelineConfig
from dosewise.pipelines.simulators.synthetic_icu import write_synthetic_icu
from dosewise.pipelines.sources.spark_engine import SparkSettings, check_spark_available, start_session

runner = CliRunner()
# Sums and means may add in another order on Spark's partitions: floats agree to this relative error.
FLOAT_RTOL = 1e-9


def assert_same_table(duck: pd.DataFrame, spark: pd.DataFrame, name: str) -> None:
    """Same columns and the same multiset of rows (floats within FLOAT_RTOL)."""
    assert list(duck.columns) == list(spark.columns), name
    assert len(duck) == len(spark), name
    duck = duck.astype({c: "str" for c in duck.columns if isinstance(duck[c].dtype, pd.CategoricalDtype)})
    exact = [c for c in duck.columns if duck[c].dtype.kind != "f"]
    a = duck.sort_values(exact, na_position="last", kind="stable").reset_index(drop=True)
    b = spark.sort_values(exact, na_position="last", kind="stable").reset_index(drop=True)
    for col in duck.columns:
        x, y = a[col], b[col]
        if x.dtype.kind == "f":
            close = np.allclose(x, y.astype("float64"), rtol=FLOAT_RTOL, atol=0.0, equal_nan=True)
            assert close, f"{name}.{col}"
        else:
            same = (x.isna() & y.isna()) | (x.astype("str") == y.astype("str"))
            assert same.all(), f"{name}.{col}: {x[~same].head(3).tolist()} vs {y[~same].head(3).tolist()}"


@pytest.mark.spark
@pytest.mark.slow
def test_spark_and_duckdb_build_the_same_concepts_on_synthetic_mimic4(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write_synthetic_icu(source, 20, seed=3, show_progress=False)
    duck = write_concept_tables(source, tmp_path / "duck")
    # 2 shuffle partitions: on 20 stays more tasks only add scheduling time
    config = SepsisPipelineConfig.model_validate(
        {"engine": "spark", "spark": {"conf": {"spark.sql.shuffle.partitions": "2"}}})
    spark = write_concept_tables(source, tmp_path / "spark", config=config)
    assert spark.extra["engine"] == "spark" and duck.extra["engine"] == "duckdb"
    assert spark.extra["rows"] == duck.extra["rows"]
    assert duck.extra["rows"]["sepsis3"] > 0 and len(duck.extra["rows"]) >= 15
    assert spark.inputs == duck.inputs
    for path in sorted((tmp_path / "duck" / "concepts").glob("*.parquet")):
        assert_same_table(pd.read_parquet(path), pd.read_parquet(tmp_path / "spark" / "concepts" / path.name),
                          path.stem)


def test_missing_pyspark_exits_2_saying_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # what `import pyspark` does when it is absent
    with pytest.raises(BadInputError, match="needs pyspark") as info:
        check_spark_available()
    assert "pip install 'dosewise[spark]'" in (info.value.hint or "")


def test_missing_java_exits_2_saying_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))  # a JAVA_HOME without bin/java
    with pytest.raises(BadInputError, match="needs Java") as info:
        check_spark_available()
    assert "openjdk-17-jre-headless" in (info.value.hint or "")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("field", ["master", "remote"])
def test_an_unanswering_master_errors_in_seconds(field: str) -> None:
    pytest.importorskip("pyspark")
    scheme = "spark" if field == "master" else "sc"
    settings = SparkSettings.model_validate({field: f"{scheme}://127.0.0.1:{_closed_port()}",
                                             "connect_timeout_s": 2})
    started = time.monotonic()
    with pytest.raises(BadInputError, match="did not answer within 2 s"):
        start_session(settings)
    assert time.monotonic() - started < 10


def test_cli_refuses_an_unknown_engine_and_an_unknown_master(tmp_path: Path) -> None:
    write_synthetic_icu(tmp_path / "src", 3, seed=1, show_progress=False)
    bad = runner.invoke(app, ["etl", "concepts", "--source", str(tmp_path / "src"), "--out",
                              str(tmp_path / "o"), "--engine", "polars"])
    assert bad.exit_code == 2 and "must be duckdb or spark" in bad.output
    master = runner.invoke(app, ["etl", "concepts", "--source", str(tmp_path / "src"), "--out",
                                 str(tmp_path / "o"), "--engine", "spark", "--spark-master", "mesos://x:1"])
    assert master.exit_code == 2 and "must be local[N], spark://, k8s://, yarn or sc://" in master.output


def _plant_event_flags(source: Path) -> None:
    """Give the synthetic records what real ones have and the generator does not: an undocumented
    `chartevents.warning` code and a 'Rewritten' infusion row, so that `event_flags` is not empty."""
    chart_path, input_path = source / "icu" / "chartevents.csv.gz", source / "icu" / "inputevents.csv.gz"
    chart, inputs = pd.read_csv(chart_path), pd.read_csv(input_path)
    chart.loc[chart.index[:2], "warning"] = 7
    inputs.loc[inputs.index[:1], "statusdescription"] = "Rewritten"
    chart.to_csv(chart_path, index=False)
    inputs.to_csv(input_path, index=False)


@pytest.mark.spark
@pytest.mark.slow
def test_the_sepsis_stage_sql_gives_duckdbs_tables_on_spark(tmp_path: Path) -> None:
    """Every stage SQL file (stay_linkage, measurements, doses, binning), transpiled with its named
    parameters as Spark `:name` markers, makes the same rows on Spark as on DuckDB from the same
    concept tables and cohort windows (synthetic MIMIC-IV, 20 stays; floats to FLOAT_RTOL)."""
    from dosewise.data_schemas import RunManifest
    from dosewise.pipelines.privacy import RunIds
    from dosewise.pipelines.runner import StageLog
    from dosewise.pipelines.sepsis.stage_runs import STAGE_RUNS, SepsisRun
    from dosewise.pipelines.sepsis.stage_sql import run_sql_file, stage_sql
    from dosewise.pipelines.sepsis.stages import SEPSIS_STAGES
    from dosewise.pipelines.sql_transpile import transpile_statement

    write_synthetic_icu(tmp_path / "src", 20, seed=3, show_progress=False)
    _plant_event_flags(tmp_path / "src")
    config = SepsisPipelineConfig.model_validate({"output": {"pseudonymize_ids": False}})
    run = SepsisRun(config, tmp_path / "src", tmp_path / "out", RunIds(""),
                    RunManifest.start("t", {}, seed=0))
    for name in ("sources", "concepts", "cohort"):  # the concept tables and cohort_windows, in DuckDB
        STAGE_RUNS[name](run, StageLog())
    cat = run.need("cat")
    tables = [t for stage in SEPSIS_STAGES for t in stage.sql]
    inputs = sorted({d for t in tables for d in stage_sql(t).depends} - set(tables))
    settings = {"bin_seconds": 4 * 3600, "clip": True, "tonicity_adjusted": True}
    spark = start_session(SparkSettings.model_validate({"conf": {"spark.sql.shuffle.partitions": "2"}}))
    try:
        for name in inputs:
            frame = cat.df(f"SELECT * FROM {name}", what=name)
            frame = frame.astype({c: "str" for c in frame if isinstance(frame[c].dtype, pd.CategoricalDtype)})
            assert len(frame), f"{name} is empty: the comparison would prove nothing"
            spark.createDataFrame(frame).createOrReplaceTempView(name)
        for table in tables:
            item = stage_sql(table)
            run_sql_file(cat, table, settings)
            statement = transpile_statement(item.sql, f"sepsis/{table}.sql")
            args = {p: settings[p] for p in item.params}
            spark.sql(statement.sql, args=args).createOrReplaceTempView(table)
            duck, other = cat.df(f"SELECT * FROM {table}", what=table), spark.table(table).toPandas()
            # DuckDB gives a nullable integer column (itemid with NULLs) as Int64, Spark as float64
            duck = duck.astype({c: "float64" for c in duck if str(duck[c].dtype) == "Int64"
                                and other[c].dtype.kind == "f"})
            # rows alike in every exact column (kept_events has no itemid): order by the floats too
            order = list(duck.columns)
            duck, other = (f.sort_values(order, na_position="last", kind="stable") for f in (duck, other))
            assert_same_table(duck, other, table)
    finally:
        spark.stop()
        cat.close()
