"""Bad raw inputs: each is a clear exit-2 error naming the file and column, or a named quarantine rule."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import BadInputError, ConfigError, MissingSourceTable
from dosewise.pipelines import SepsisPipelineConfig, run_sepsis_pipeline

from .mimic_builders import merge_tables, septic_stay_tables, write_mimic4

CFG = SepsisPipelineConfig(output={"pseudonymize_ids": False}, threads=1)


def _run(source: Path, out: Path) -> dict[str, int]:
    manifest = run_sepsis_pipeline(CFG, source, out, show_progress=False)
    return {rule: n for s in manifest.stages for rule, n in s.quarantined_by_rule.items()}


def test_clean_stay_runs_with_nothing_quarantined(tmp_path: Path) -> None:
    rules = _run(write_mimic4(tmp_path / "src", septic_stay_tables()), tmp_path / "out")
    assert rules == {}
    traj = pd.read_parquet(tmp_path / "out" / "trajectories.parquet")
    assert traj["fluid_ml_4h"].sum() == pytest.approx(1000.0)  # the 4 h bolus, split across bins
    assert traj["timeout"].iloc[-1] and not traj["terminal"].any()


def test_missing_table_names_it_and_its_use(tmp_path: Path) -> None:
    tables = septic_stay_tables()
    del tables["microbiologyevents"]
    source = write_mimic4(tmp_path / "src", tables)
    with pytest.raises(
        MissingSourceTable, match=r"microbiologyevents.*cultures for the suspicion of infection"
    ):
        run_sepsis_pipeline(CFG, source, tmp_path / "out", show_progress=False)
    result = CliRunner().invoke(
        app,
        [
            "etl",
            "sepsis",
            "--source",
            str(source),
            "--out",
            str(tmp_path / "o2"),
            "--set",
            "output.pseudonymize_ids=false",
        ],
    )
    assert result.exit_code == 2 and "microbiologyevents" in result.output


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    source = write_mimic4(tmp_path / "src", septic_stay_tables())
    path = source / "icu" / "chartevents.csv.gz"
    pd.read_csv(path).drop(columns=["valuenum"]).to_csv(path, index=False)
    with pytest.raises(MissingSourceTable, match=r"chartevents\.csv\.gz lacks column\(s\) valuenum"):
        run_sepsis_pipeline(CFG, source, tmp_path / "out", show_progress=False)


@pytest.mark.parametrize(("column", "bad"), [("charttime", "yesterday noon"), ("valuenum", "ninety")])
def test_unparseable_value_names_file_and_column(tmp_path: Path, column: str, bad: str) -> None:
    tables = septic_stay_tables()
    tables["chartevents"][3][column] = bad
    source = write_mimic4(tmp_path / "src", tables)
    with pytest.raises(BadInputError, match=rf"chartevents\.csv\.gz, line \d+, column `{column}`"):
        run_sepsis_pipeline(CFG, source, tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    tables = merge_tables(*(septic_stay_tables(i, i, i) for i in range(1, 40)))
    source = write_mimic4(tmp_path / "src", tables)
    path = source / "icu" / "chartevents.csv.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError, match=r"chartevents\.csv\.gz"):
        run_sepsis_pipeline(CFG, source, tmp_path / "out", show_progress=False)


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    source = write_mimic4(tmp_path / "src", septic_stay_tables())
    (source / "hosp" / "labevents.csv.gz").write_bytes(b"")
    with pytest.raises(BadInputError, match=r"labevents\.csv\.gz is an empty file.*laboratory values"):
        run_sepsis_pipeline(CFG, source, tmp_path / "out", show_progress=False)
    with gzip.open(source / "hosp" / "labevents.csv.gz", "wb"):
        pass  # a valid gzip holding nothing, not even a header
    with pytest.raises(BadInputError, match="no header row"):
        run_sepsis_pipeline(CFG, source, tmp_path / "out", show_progress=False)


def test_bad_rows_are_quarantined_under_named_rules(tmp_path: Path) -> None:
    tables = septic_stay_tables()
    dose = dict(tables["inputevents"][1])
    tables["inputevents"] += [
        {**dose, "rateuom": "mcg/fortnight"},  # unknown rate unit
        {**dose, "rate": -0.2, "rateuom": "mcg/kg/min"},  # negative dose
        {**dose, "rate": 50.0},  # absurd NE-equivalent rate
        dict(tables["inputevents"][0]),  # duplicate fluid row
    ]
    tables["chartevents"] += [
        dict(tables["chartevents"][0]),  # duplicate row
        {**tables["chartevents"][1], "valuenum": 900, "value": "900"},  # MAP out of bounds
        {**tables["chartevents"][1], "stay_id": 999},  # event outside any stay
    ]
    rules = _run(write_mimic4(tmp_path / "src", tables), tmp_path / "out")
    assert rules == {
        "rate_unit_unknown": 1,
        "dose_negative": 1,
        "norepi_eq_mcg_kg_min_range": 1,
        "duplicate_dose": 1,
        "duplicate_event": 1,
        "map_mmhg_range": 1,
        "event_outside_stay": 1,
    }
    q = pd.read_parquet(tmp_path / "out" / "quarantine" / "doses.parquet").set_index("rule")
    assert q.loc["rate_unit_unknown", "failure_case"] == "mcg/fortnight"
    assert "rules/rate_units.csv" in q.loc["rate_unit_unknown", "reason"]
    traj = pd.read_parquet(tmp_path / "out" / "trajectories.parquet")
    assert traj["fluid_ml_4h"].sum() == pytest.approx(1000.0)  # the duplicate bolus was not counted twice
    assert traj["norepi_eq_mcg_kg_min"].max() < 1.0


def test_missing_salt_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOSEWISE_ID_SALT", raising=False)
    source = write_mimic4(tmp_path / "src", septic_stay_tables())
    with pytest.raises(ConfigError, match="DOSEWISE_ID_SALT"):
        run_sepsis_pipeline(SepsisPipelineConfig(), source, tmp_path / "out", show_progress=False)
    monkeypatch.setenv("DOSEWISE_ID_SALT", "s3cret-s3cret-s3cret")
    manifest = run_sepsis_pipeline(SepsisPipelineConfig(), source, tmp_path / "out", show_progress=False)
    assert "s3cret" not in (tmp_path / "out" / "manifest.json").read_text()
    assert manifest.dataset is not None and manifest.dataset.ids_pseudonymised


def test_not_a_mimic_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MissingSourceTable, match="neither a MIMIC-IV folder"):
        run_sepsis_pipeline(CFG, tmp_path, tmp_path / "out", show_progress=False)


def test_mimic3_without_input_events(tmp_path: Path, mimic3_demo_dir: Path) -> None:
    for name in (
        "ICUSTAYS",
        "PATIENTS",
        "ADMISSIONS",
        "CHARTEVENTS",
        "LABEVENTS",
        "OUTPUTEVENTS",
        "MICROBIOLOGYEVENTS",
        "PRESCRIPTIONS",
    ):
        (tmp_path / f"{name}.csv.gz").symlink_to(mimic3_demo_dir / f"{name}.csv.gz")
    result = CliRunner().invoke(app, ["etl", "check-sources", "--source", str(tmp_path)])
    assert result.exit_code == 2 and "INPUTEVENTS_CV" in result.output


def test_clipping_keeps_the_row_and_records_it(tmp_path: Path) -> None:
    tables = septic_stay_tables()
    tables["chartevents"].append(
        {**tables["chartevents"][1], "charttime": "2150-01-01 12:30:00", "valuenum": 900, "value": "900"}
    )
    source = write_mimic4(tmp_path / "src", tables)
    cfg = SepsisPipelineConfig(output={"pseudonymize_ids": False}, outliers={"clip": True}, threads=1)
    manifest = run_sepsis_pipeline(cfg, source, tmp_path / "out", show_progress=False)
    stage = next(s for s in manifest.stages if s.name == "measurements")
    assert stage.quarantined_by_rule == {"map_mmhg_clipped": 1} and stage.rows_quarantined == 0
    assert stage.rows_in == stage.rows_out
    traj = pd.read_parquet(tmp_path / "out" / "trajectories.parquet")
    assert traj["map_mmhg"].max() == pytest.approx((250 + 4 * 60) / 5)  # 12-16 h bin: four 60s + clipped 900
