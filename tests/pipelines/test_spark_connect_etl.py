"""`dosewise etl sepsis|chemo --engine spark --spark-remote sc://…` against a real Spark Connect server.

The server is the one pyspark ships (`sbin/start-connect-server.sh`, `local[2]` behind it), started
for this module on a free port; the client talks to it over gRPC only (no SparkContext on the client
side), which is how a Databricks or cluster Connect endpoint is used. The run must give what the
DuckDB engine gives on the same synthetic MIMIC-IV (compared as in `test_spark_sepsis_etl.py`) and
on the same dirty synthetic OMOP CDM folder (stage counts by rule, manifest notes, every file), and
on the real colon trial records (byte-identical files).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import RunManifest
from dosewise.pipelines import write_synthetic_oncology
from dosewise.pipelines.simulators.synthetic_icu import write_synthetic_icu

from .chemo_fingerprint import _plant_omop_dirt
from .test_spark_engine import assert_same_table
from .test_spark_sepsis_etl import N_STAYS, SEED, assert_same_outputs

runner = CliRunner()
START_TIMEOUT_S = 180  # the server's JVM starts in 20-60 s on 2 loaded cores


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server for this module: `sc://localhost:PORT`, stopped afterwards."""
    pyspark = pytest.importorskip("pyspark")
    pytest.importorskip("grpc", reason="Spark Connect needs pyspark[connect]")
    home = Path(pyspark.__file__).parent
    logs = tmp_path_factory.mktemp("connect-server")
    port = _free_port()
    env = {**os.environ, "SPARK_HOME": str(home), "PYSPARK_PYTHON": sys.executable,
           "SPARK_NO_DAEMONIZE": "1", "SPARK_LOG_DIR": str(logs), "SPARK_PID_DIR": str(logs)}
    cmd = ["bash", str(home / "sbin" / "start-connect-server.sh"), "--master", "local[2]",
           "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.ui.enabled=false",
           "--conf", "spark.driver.memory=1g", "--conf", "spark.sql.shuffle.partitions=2"]
    with open(logs / "server.out", "wb") as out:
        server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(port):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = (logs / "server.out").read_text()[-2000:]
                pytest.fail(f"Spark Connect server did not start: {tail}")
            time.sleep(1.0)
        yield f"sc://localhost:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.mark.spark
@pytest.mark.slow
def test_etl_sepsis_through_spark_connect_gives_the_duckdb_trajectories(
    connect_url: str, tmp_path: Path
) -> None:
    write_synthetic_icu(tmp_path / "src", N_STAYS, seed=SEED, show_progress=False)
    base = ["--quiet", "etl", "sepsis", "--source", str(tmp_path / "src"),
            "--set", "output.pseudonymize_ids=false"]
    duck = runner.invoke(app, [*base, "--out", str(tmp_path / "duckdb"), "--engine", "duckdb"])
    assert duck.exit_code == 0, duck.output
    remote = runner.invoke(app, [*base, "--out", str(tmp_path / "connect"), "--engine", "spark",
                                 "--spark-remote", connect_url])
    assert remote.exit_code == 0, remote.output
    manifest = RunManifest.read(tmp_path / "connect")
    assert manifest.config["spark"]["remote"] == connect_url
    assert_same_outputs(tmp_path / "duckdb", tmp_path / "connect")


@pytest.mark.spark
@pytest.mark.slow
def test_etl_chemo_through_spark_connect_gives_the_duckdb_trajectories(
    connect_url: str, tmp_path: Path
) -> None:
    write_synthetic_oncology(tmp_path / "omop", 50, seed=SEED, fmt="omop", file_format="csv")
    _plant_omop_dirt(tmp_path / "omop")
    base = ["--quiet", "etl", "chemo", "--source", str(tmp_path / "omop"), "--config", "chemo_omop",
            "--set", "input.unknown_regimen=quarantine",
            "--set", "output.id_salt='connect-chemo-salt-0123456'"]
    outs = {"duckdb": ["--engine", "duckdb"], "connect": ["--engine", "spark", "--spark-remote", connect_url]}
    for name, engine in outs.items():
        done = runner.invoke(app, [*base, "--out", str(tmp_path / name), *engine])
        assert done.exit_code == 0, done.output
    duck, remote = RunManifest.read(tmp_path / "duckdb"), RunManifest.read(tmp_path / "connect")
    assert remote.config["engine"] == "spark" and remote.config["spark"]["remote"] == connect_url
    counts = [[(s.name, s.rows_in, s.rows_out, s.quarantined_by_rule) for s in m.stages]
              for m in (duck, remote)]
    assert counts[0] == counts[1] and sum(s.rows_quarantined for s in duck.stages) > 0
    assert duck.extra == remote.extra and duck.dataset == remote.dataset and duck.inputs == remote.inputs
    files = sorted(str(p.relative_to(tmp_path / "duckdb")) for p in (tmp_path / "duckdb").rglob("*.parquet"))
    assert files == sorted(str(p.relative_to(tmp_path / "connect"))
                           for p in (tmp_path / "connect").rglob("*.parquet"))
    for name in files:
        assert_same_table(pd.read_parquet(tmp_path / "duckdb" / name),
                          pd.read_parquet(tmp_path / "connect" / name), name)


@pytest.mark.spark
@pytest.mark.slow
def test_trial_records_through_spark_connect_give_the_duckdb_files(
    connect_url: str, trials_dir: Path, tmp_path: Path
) -> None:
    """The real NCCTG colon records (a long export: grouped, pivoted per group on the server)."""
    source = trials_dir
    base = ["--quiet", "etl", "chemo", "--source", str(source), "--config", "registry_colon",
            "--set", "output.id_salt='connect-trial-salt-0123456'"]
    outs = {"duckdb": ["--engine", "duckdb"], "connect": ["--engine", "spark", "--spark-remote", connect_url]}
    for name, engine in outs.items():
        done = runner.invoke(app, [*base, "--out", str(tmp_path / name), *engine])
        assert done.exit_code == 0, done.output
    duck, remote = RunManifest.read(tmp_path / "duckdb"), RunManifest.read(tmp_path / "connect")
    assert remote.config["spark"]["remote"] == connect_url and duck.extra == remote.extra
    assert [s.model_dump(exclude={"seconds"}) for s in duck.stages] == \
        [s.model_dump(exclude={"seconds"}) for s in remote.stages]
    for name in ("trajectories.parquet", "cohort.parquet", "splits.parquet"):
        assert (tmp_path / "duckdb" / name).read_bytes() == (tmp_path / "connect" / name).read_bytes(), name


@pytest.mark.spark
def test_a_local_session_starts_in_the_same_process_after_a_connect_session(connect_url: str) -> None:
    # pyspark marks the process Connect-only when a remote session starts; stopping ours lifts it, so
    # a later `local[N]` run in the same process (a `dosewise run`, the next test file) is classic
    from dosewise.pipelines.sources.spark_engine import SparkSettings, start_session, stop_session

    remote = start_session(SparkSettings(remote=connect_url))
    assert remote.range(3).count() == 3
    stop_session(remote)
    assert "SPARK_CONNECT_MODE_ENABLED" not in os.environ
    local = start_session(SparkSettings(master="local[1]"))
    try:
        assert local.sparkContext.master == "local[1]" and local.range(4).count() == 4
    finally:
        stop_session(local)
