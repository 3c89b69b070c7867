"""`dosewise demo` = `dosewise run --config pipeline_demo` end to end (at smoke size): every stage
runs and leaves its outputs; a killed run resumes and skips the finished stages; the JSON log,
the MLflow parent/child runs and the exit codes are what a scheduler reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.app.demo import SMOKE, run_demo
from dosewise.app.pipeline import LOG_NAME
from dosewise.data_schemas import OpeReport, RunManifest, read_trajectories

runner = CliRunner()
STAGES = ["source", "etl", "train", "evaluate", "register", "promote", "ground_truth", "chemo_leg"]


def _events(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (folder / LOG_NAME).read_text().splitlines()]


def _run_args(out: Path) -> list[str]:
    return ["--quiet", "run", "--config", "pipeline_demo", "--out", str(out),
            *[arg for s in SMOKE for arg in ("--set", s)]]


def _kill_after_etl(out: Path) -> None:
    """Start `dosewise run` in a subprocess and SIGKILL it once the train stage has started."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(Path(sys.executable).parent / "dosewise"), *_run_args(out)]
    proc = subprocess.Popen(command, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / LOG_NAME).is_file() and any(
                    e["event"] == "stage_start" and e.get("stage") == "train" for e in _events(out)):
                break
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_demo_pipeline_runs_resumes_and_logs(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    _kill_after_etl(out)
    assert (out / "stages" / "etl" / "manifest.json").is_file()
    assert not (out / "stages" / "train" / "manifest.json").exists()

    outcome = run_demo(out, quiet=True, overrides=SMOKE)  # resumes: source and etl skipped
    assert [row[1] == "skipped" for row in outcome.rows] == [True, True] + [False] * 6
    frame, manifest = read_trajectories(out / "trajectories")
    assert len(frame) > 0 and manifest.funnel
    assert RunManifest.read(out / "policy").kind
    assert (out / "policy" / "ope_test" / "ope_report.json").is_file()
    assert (out / "mlflow.db").is_file() and (out / "mlartifacts").is_dir() and not (out / "mlruns").exists()
    rows = dict((title, detail) for title, _, detail in outcome.rows)
    assert "models:/sepsis-dosing@candidate = version 1" in rows["registry"]
    assert "data allow" in rows["off-policy evaluation"]
    assert "exact survival" in rows["ICU-Sepsis ground truth"]
    chemo, chemo_manifest = read_trajectories(out / "chemo_trajectories")
    assert len(chemo) > 0 and chemo_manifest.dataset and chemo_manifest.dataset.has_behaviour_prob
    chemo_row = next(detail for title, detail in rows.items() if title.startswith("chemotherapy leg"))
    assert "true value (Monte Carlo +/- SE)" in chemo_row and "vs true value" in chemo_row
    assert "models:/chemo-dose-intensity@candidate = version 1" in chemo_row
    assert " | discrete_cql: WDR " in chemo_row  # the leg's policy: chemo_discrete_cql (demo_chemo.py)
    report = OpeReport.model_validate_json((out / "policy" / "ope_test" / "ope_report.json").read_text())
    note = report.reliability(report.estimate("WIS", report.policy_name))
    assert note is not None and note.startswith("not reliable: ")  # a smoke-size cohort: say so
    gate = rows["promotion gate"]
    assert note in gate and "passes" not in gate and "too small for a reliable OPE" in gate

    events = _events(out)
    ended = [e["stage"] for e in events if e["event"] == "stage_end"]
    assert ended == STAGES  # source, etl (killed run) + the five after the resume
    assert all("counts" in e and "seconds" in e for e in events if e["event"] == "stage_end")

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parent = outcome.parent_run_id
    children = {r.data.tags.get("dosewise.stage") for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parent}
    assert children == set(STAGES) - {"source", "etl"}  # those two ran under the killed run's parent

    again = runner.invoke(app, _run_args(out))  # everything finished: all skipped; the gate refused
    assert again.exit_code in (0, 3)
    assert [e["event"] for e in _events(out)[-9:-1]] == ["stage_skipped"] * 8
    refused = RunManifest.read(out / "stages" / "promote").extra["refused"]
    assert again.exit_code == (3 if refused else 0)

    (out / "stages" / "evaluate" / "manifest.json").unlink()  # as if killed during evaluation
    partial = run_demo(out, quiet=True, overrides=SMOKE)
    ran = [title for title, seconds, _ in partial.rows if seconds != "skipped"]
    assert ran == ["off-policy evaluation", "registry", "promotion gate"]
    assert "version 2" in dict((t, d) for t, _, d in partial.rows)["registry"]

    policy = RunManifest.read(out / "policy").created_at
    unfit = runner.invoke(app, [*_run_args(out), "--only", "train", "--set", "train.settings.features=['x']"])
    assert unfit.exit_code == 2 and "`train.features` must be state columns" in unfit.output
    assert RunManifest.read(out / "policy").created_at == policy  # refused before touching the policy
