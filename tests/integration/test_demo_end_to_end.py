"""`dosewise demo` end to end (at smoke size): every stage runs and leaves its outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from dosewise.app.demo import SMOKE, STEPS, run_demo
from dosewise.data_schemas import OpeReport, RunManifest, read_trajectories


@pytest.mark.slow
def test_demo_runs_every_stage(tmp_path: Path) -> None:
    ctx = run_demo(tmp_path, quiet=True, sizes=SMOKE)
    assert [row[0] for row in ctx.rows] == [title for title, _ in STEPS]
    frame, manifest = read_trajectories(tmp_path / "trajectories")
    assert len(frame) > 0 and manifest.funnel
    assert RunManifest.read(tmp_path / "policy").kind
    assert (tmp_path / "policy" / "ope_test" / "ope_report.json").is_file()
    assert (tmp_path / "mlflow.db").is_file() and (tmp_path / "mlartifacts").is_dir()
    assert not (tmp_path / "mlruns").exists()
    assert "models:/sepsis-dosing@candidate = version 1" in ctx.rows[4][2]
    assert "exact survival" in ctx.rows[5][2]
    assert "data allow" in ctx.rows[3][2] and "exact range the clinicians' data allow" in ctx.rows[5][2]
    chemo, chemo_manifest = read_trajectories(tmp_path / "chemo_trajectories")
    assert len(chemo) > 0 and chemo_manifest.dataset and chemo_manifest.dataset.has_behaviour_prob
    assert "true value (Monte Carlo +/- SE)" in ctx.rows[7][2]
    assert "vs true value" in ctx.rows[8][2]
    assert "models:/chemo-dose-intensity@candidate = version 1" in ctx.rows[8][2]
    report = OpeReport.model_validate_json((tmp_path / "policy" / "ope_test" / "ope_report.json").read_text())
    note = report.reliability(report.estimate("WIS", report.policy_name))
    assert note is not None and note.startswith("not reliable: ")  # a smoke-size cohort: say so
    assert note in ctx.rows[4][2] and "passes" not in ctx.rows[4][2]  # no improvement claimed from it
    assert "too small for a reliable OPE" in ctx.rows[4][2]
