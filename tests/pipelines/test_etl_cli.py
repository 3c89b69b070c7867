"""`dosewise etl check-sources`, `etl concepts` and `etl sepsis --quiet` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import RunManifest

from .mimic_builders import septic_stay_tables, write_mimic4


def test_check_sources_reports_version_and_coverage(tmp_path: Path) -> None:
    source = write_mimic4(tmp_path, septic_stay_tables())
    result = CliRunner().invoke(app, ["etl", "check-sources", "--source", str(source)])
    assert result.exit_code == 0, result.output
    assert "MIMIC-IV" in result.output and "metavision: 1 stays" in result.output


def test_concepts_only_and_partial_sources(tmp_path: Path) -> None:
    tables = septic_stay_tables()
    del tables["prescriptions"]  # suspicion of infection (and Sepsis-3) cannot be built
    source = write_mimic4(tmp_path / "src", tables)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["etl", "concepts", "--source", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = RunManifest.read(out)
    assert {"sepsis3", "suspicion_of_infection", "antibiotic"} <= set(manifest.extra["skipped"])
    assert (out / "concepts" / "sofa.parquet").exists() and not (
        out / "concepts" / "sepsis3.parquet"
    ).exists()
    sofa = pd.read_parquet(out / "concepts" / "sofa.parquet")
    assert {"stay_id", "hr", "sofa_24h"} <= set(sofa.columns)
    only = CliRunner().invoke(
        app, ["etl", "concepts", "--source", str(source), "--out", str(tmp_path / "o2"), "--only", "weight"]
    )
    assert only.exit_code == 0, only.output
    assert sorted(p.name for p in (tmp_path / "o2" / "concepts").iterdir()) == [
        "chart_measurements.parquet",
        "icustay_detail.parquet",
        "weight.parquet",
    ]
    missing = CliRunner().invoke(
        app, ["etl", "concepts", "--source", str(source), "--out", str(tmp_path / "o3"), "--only", "sepsis3"]
    )
    assert missing.exit_code == 2 and "prescriptions" in missing.output


def test_etl_sepsis_quiet_and_config_errors(tmp_path: Path) -> None:
    source = write_mimic4(tmp_path / "src", septic_stay_tables())
    base = ["etl", "sepsis", "--source", str(source), "--out", str(tmp_path / "out")]
    quiet = CliRunner().invoke(app, ["--quiet", *base, "--set", "output.id_salt=x-salt-of-16-chars"])
    assert quiet.exit_code == 0 and quiet.output.strip() == ""
    assert (tmp_path / "out" / "trajectories.parquet").exists()
    bad = CliRunner().invoke(app, [*base, "--set", "binning.bin_hours=0"])
    assert bad.exit_code == 2 and "binning.bin_hours" in bad.output
    wrong = CliRunner().invoke(
        app, [*base, "--config", "sepsis_mimic3", "--set", "output.id_salt=x-salt-of-16-chars"]
    )
    assert wrong.exit_code == 2 and "sepsis_mimic4" in wrong.output


def test_quiet_never_silences_the_answer(tmp_path: Path) -> None:
    source = write_mimic4(tmp_path, septic_stay_tables())
    quiet = CliRunner().invoke(app, ["--quiet", "etl", "check-sources", "--source", str(source)])
    assert quiet.exit_code == 0 and "metavision: 1 stays" in quiet.output  # the report is the answer
    as_json = CliRunner().invoke(app, ["-q", "etl", "check-sources", "--source", str(source), "--json"])
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert report["version"] == "mimic_iv" and report["care_systems"] == {"metavision": 1}
    assert {t["table"] for t in report["tables"]} >= {"chartevents", "prescriptions"}
    listed = CliRunner().invoke(app, ["--quiet", "config", "list"])
    assert listed.exit_code == 0 and "sepsis_mimic3" in listed.output
    shown = CliRunner().invoke(app, ["--quiet", "config", "show", "sepsis_mimic3"])
    assert shown.exit_code == 0 and "tonicity_adjusted = true" in shown.output
