"""A real sweep on a local Ray (2 CPUs): trials as child MLflow runs, a crashed trial recorded as
failed without stopping the sweep, the winner tested and registered, and a rerun resumed by Tune
that finds the sweep complete and registers nothing new."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dosewise.app.sweep import RESULTS_NAME, load_sweep_config, run_sweep
from dosewise.data_schemas import RunManifest
from dosewise.data_schemas.ope import OpeReport


@pytest.mark.slow
def test_sweep_runs_selects_registers_and_resumes(tmp_path: Path, local_ray: None) -> None:
    out = tmp_path / "sweep"
    config = load_sweep_config("sweep_demo", [
        f"out={str(out)!r}", "data.episodes=600", "train.settings.n_steps=100", "search.seeds=[3]",
        "search.space={\"algorithm.alpha\" = [0.0, 1.0], \"mask.forbidden_actions\" = [[], [99]]}",
        "selection.min_ess=1", "evaluate.settings.n_bootstrap=100", "evaluate.settings.fqe.n_steps=50",
    ])
    outcome = run_sweep(config, quiet=True)
    statuses = {r.index: r.status for r in outcome.rows}
    assert statuses == {0: "finished", 1: "failed", 2: "finished", 3: "failed"}  # action 99 does not exist
    assert all("forbidden_actions" in (r.error or "") for r in outcome.rows if r.status == "failed")
    assert outcome.winner is not None and outcome.winner.index in (0, 2)
    assert all(r.exact is not None and 0.0 < r.exact < 1.0 for r in outcome.rows if r.status == "finished")
    # each finished trial reports its worker's own CPU (what a bench sums: Ray's workers are not below
    # the driver's process); a trial of 100 steps and an OPE cannot take none
    assert all((r.cpu_seconds or 0.0) > 0.1 for r in outcome.rows if r.status == "finished")
    assert (out / "trials" / f"trial_{outcome.winner.index:03d}" / "ope_test" / "ope_report.json").is_file()
    assert "models:/sepsis-dosing@candidate = version 1" in outcome.registered
    # one behaviour model per sweep: the first finished trial fitted it, the other and the test loaded it
    cached = sorted(str(r.behaviour_model) for r in outcome.rows if r.status == "finished")
    assert [c.split()[0] for c in cached] == ["fitted", "loaded"] and len({c.split()[1] for c in cached}) == 1
    test_report = OpeReport.model_validate_json(
        (out / "trials" / f"trial_{outcome.winner.index:03d}" / "ope_test" / "ope_report.json").read_text())
    assert (test_report.behaviour.cache, test_report.behaviour.cache_key) == ("loaded", cached[0].split()[1])

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parent = json.loads((out / "sweep_state.json").read_text())["parent_run_id"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]
    assert len(children) == 4 and sorted(r.info.status for r in children).count("FAILED") == 2

    trained = RunManifest.read(out / "trials" / "trial_000" / "policy").created_at
    again = run_sweep(config, quiet=True)  # Tune restores the finished experiment: nothing retrains
    assert RunManifest.read(out / "trials" / "trial_000" / "policy").created_at == trained
    assert [r.score for r in again.rows] == [r.score for r in outcome.rows]
    assert json.loads((out / RESULTS_NAME).read_text())["winner"] == again.winner.index
    # the rerun found the sweep complete: the winner keeps its one registry version and test report
    assert again.extra["already_complete"] and again.registered == outcome.registered
    versions = client.search_model_versions("name='sepsis-dosing'")
    assert [str(v.version) for v in versions] == ["1"] and versions[0].run_id == outcome.winner.run_id
