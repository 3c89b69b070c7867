"""Inputs that used to give wrong trajectories with exit 0 now stop with a clear error or a quarantine.

Each case alters a copy of the real MIMIC-III demo (or a builder folder) the way the issue found it.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import ConfigError, MissingSourceTable, load_config
from dosewise.models import TrainConfig
from dosewise.models import config_folder as models_config_folder
from dosewise.pipelines import SepsisPipelineConfig, config_folder, run_sepsis_pipeline

pytestmark = pytest.mark.slow

CFG = SepsisPipelineConfig(output={"pseudonymize_ids": False}, threads=1)


def _demo_copy(mimic3_demo_dir: Path, dest: Path, drop: tuple[str, ...] = ()) -> Path:
    dest.mkdir()
    for path in mimic3_demo_dir.glob("*.csv.gz"):
        if path.name.split(".")[0] not in drop:
            shutil.copy(path, dest / path.name)
    return dest


def _header_only(path: Path) -> None:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        header = handle.readline()
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(header)


def _etl(source: Path, out: Path) -> CliRunner:
    return CliRunner().invoke(app, ["etl", "sepsis", "--source", str(source), "--out", str(out),
                                    "--config", "sepsis_mimic3", "--set", "output.pseudonymize_ids=false"],
                              env={"COLUMNS": "1000"})


def test_missing_carevue_inputs_is_an_error_not_zero_doses(mimic3_demo_dir: Path, tmp_path: Path) -> None:
    source = _demo_copy(mimic3_demo_dir, tmp_path / "src", drop=("INPUTEVENTS_CV",))
    result = _etl(source, tmp_path / "out")
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert "INPUTEVENTS_CV is missing" in text and "carevue" in text
    assert not (tmp_path / "out" / "manifest.json").exists()
    check = CliRunner().invoke(app, ["etl", "check-sources", "--source", str(source)])
    assert check.exit_code == 2


def test_header_only_input_table_of_a_present_care_system(mimic3_demo_dir: Path, tmp_path: Path) -> None:
    source = _demo_copy(mimic3_demo_dir, tmp_path / "src")
    _header_only(source / "INPUTEVENTS_MV.csv.gz")
    with pytest.raises(MissingSourceTable, match=r"metavision stay\(s\), but INPUTEVENTS_MV is empty"):
        run_sepsis_pipeline(CFG, source, tmp_path / "out", show_progress=False)


def test_header_only_chartevents_is_an_error(mimic3_demo_dir: Path, tmp_path: Path) -> None:
    source = _demo_copy(mimic3_demo_dir, tmp_path / "src")
    _header_only(source / "CHARTEVENTS.csv.gz")
    result = _etl(source, tmp_path / "out")
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "CHARTEVENTS.csv.gz has a header but no rows" in text, text


def test_two_files_for_one_table_name_both(mimic3_demo_dir: Path, tmp_path: Path) -> None:
    source = _demo_copy(mimic3_demo_dir, tmp_path / "src")
    with gzip.open(source / "CHARTEVENTS.csv.gz", "rt", encoding="utf-8") as handle:
        half = [next(handle) for _ in range(1000)]
    (source / "CHARTEVENTS.csv").write_text("".join(half), encoding="utf-8")
    result = _etl(source, tmp_path / "out")
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert "2 files" in text and "CHARTEVENTS.csv.gz, CHARTEVENTS.csv;" in text and "ambiguous" in text


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_config_floats_must_be_finite(value: str) -> None:
    with pytest.raises(ConfigError, match=r"`reward\.c0` must be a finite number\. Got "):
        load_config("sepsis_mimic3", SepsisPipelineConfig, [f"reward.c0={value}"], search=[config_folder()])
    with pytest.raises(ConfigError, match=r"learning_rate` must be a finite number"):
        load_config("discrete_cql", TrainConfig, [f"algorithm.learning_rate={value}"],
                    search=[models_config_folder()])


def test_nan_shaping_coefficient_on_the_command_line(tmp_path: Path) -> None:
    args = ["etl", "sepsis", "--source", str(tmp_path), "--out", str(tmp_path / "o"),
            "--set", "reward.c0=nan"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "1000"})
    assert result.exit_code == 2 and "`reward.c0` must be a finite number. Got nan." in result.output


def test_codes_outside_documented_values_are_quarantined() -> None:
    from dosewise.pipelines.sepsis.cohort import select_sepsis3_cohort
    from dosewise.pipelines.sepsis.config import InclusionConfig

    from .test_sepsis_units import _sepsis, _stays

    stays = _stays()
    stays.loc[stays["stay_id"] == 5, "hospital_expire_flag"] = 2  # a death coded 2 once read as survival
    stays.loc[stays["stay_id"] == 1, "gender"] = "U"  # once mapped to female
    result = select_sepsis3_cohort(stays, _sepsis(), InclusionConfig(), bin_hours=4)
    assert result.cohort.empty
    rows = result.excluded.set_index("stay_id")
    assert rows.loc[5, "rule"] == "hospital_expire_flag_code" and rows.loc[5, "failure_case"] == "2"
    assert rows.loc[1, "rule"] == "gender_code" and rows.loc[1, "failure_case"] == "U"
    assert "MIMIC PATIENTS" in rows.loc[1, "reason"]
    stays = _stays()
    stays.loc[stays["stay_id"] == 1, "age_years"] = 150.0
    stays.loc[stays["stay_id"] == 5, "care_system"] = "unknown"
    rows = select_sepsis3_cohort(stays, _sepsis(), InclusionConfig(), 4).excluded.set_index("stay_id")
    assert rows.loc[1, "rule"] == "age_plausible" and rows.loc[5, "rule"] == "care_system_code"


def test_mimic3_shifted_ages_follow_the_configured_rule_and_other_old_ages_are_quarantined() -> None:
    from dosewise.pipelines.sepsis.cohort import select_sepsis3_cohort
    from dosewise.pipelines.sepsis.config import InclusionConfig

    from .test_sepsis_units import _sepsis, _stays

    stays = _stays()
    stays["age_shift_documented"] = True  # a MIMIC-III source
    stays.loc[stays["stay_id"] == 5, "age_years"] = 300.6  # MIMIC-III's documented >89 shift
    stays.loc[stays["stay_id"] == 1, "age_years"] = 150.0  # not the shift: a bad record
    median = select_sepsis3_cohort(stays, _sepsis(), InclusionConfig(), 4)
    assert median.cohort.set_index("stay_id").loc[5, "age_years"] == 91.4
    assert median.excluded.set_index("stay_id").loc[1, "rule"] == "age_plausible"
    assert median.shifted_ages is not None and median.shifted_ages["stays"] == 1
    assert "91.4" in str(median.shifted_ages["action"])
    strict = select_sepsis3_cohort(stays, _sepsis(), InclusionConfig(shifted_age="quarantine"), 4)
    rows = strict.excluded.set_index("stay_id")
    assert rows.loc[5, "rule"] == "age_shifted_over_89" and rows.loc[5, "failure_case"] == "300.6"
    assert 5 not in set(strict.cohort["stay_id"])


def _rewrite_csv(path: Path, edit: object) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    edit(frame)  # type: ignore[operator]
    frame.to_csv(path, index=False, compression="gzip")


def test_demo_with_bad_codes_quarantines_those_stays(mimic3_demo_dir: Path, tmp_path: Path) -> None:
    base = run_sepsis_pipeline(CFG, mimic3_demo_dir, tmp_path / "base", show_progress=False)
    cohort = pd.read_parquet(tmp_path / "base" / "cohort.parquet")
    dead, alive = cohort[cohort["died_in_hospital"]].iloc[0], cohort[~cohort["died_in_hospital"]].iloc[0]
    source = _demo_copy(mimic3_demo_dir, tmp_path / "src")
    _rewrite_csv(source / "ADMISSIONS.csv.gz", lambda f: f.__setitem__(
        "hospital_expire_flag", f["hospital_expire_flag"].mask(f["hadm_id"] == str(dead["hadm_id"]), "2")))
    _rewrite_csv(source / "PATIENTS.csv.gz", lambda f: f.__setitem__(
        "gender", f["gender"].mask(f["subject_id"] == str(alive["subject_id"]), "X")))
    planted = _plant_event_flags(source)
    manifest = run_sepsis_pipeline(CFG, source, tmp_path / "out", show_progress=False)
    assert manifest.extra["n_episodes"] == base.extra["n_episodes"] - 2
    q = pd.read_parquet(tmp_path / "out" / "quarantine" / "cohort.parquet")
    by_key = dict(zip(q["row_key"], q["rule"], strict=True))
    assert by_key[f"stay_id={dead['stay_id']}"] == "hospital_expire_flag_code"
    assert by_key[f"stay_id={alive['stay_id']}"] == "gender_code"
    # flags outside their documented values: quarantined with a reason, never read as a default
    linkage = pd.read_parquet(tmp_path / "out" / "quarantine" / "stay_linkage.parquet")
    for rule, value in planted.items():
        hit = linkage[linkage["rule"] == rule]
        assert list(hit["failure_case"]) == [value], (rule, hit)
        assert "documented values" in hit["reason"].iloc[0]
    before = {s.name: s.quarantined_by_rule for s in base.stages}["stay_linkage"]
    after = {s.name: s.quarantined_by_rule for s in manifest.stages}["stay_linkage"]
    assert after["rewritten"] == before["rewritten"] > 0
    assert after["charted_in_error"] == before["charted_in_error"] > 0


def _plant_event_flags(source: Path) -> dict[str, str]:
    """An undocumented flag on one read row of each small flagged table; {rule: planted value}."""
    from dosewise.pipelines.sources.duckdb_catalog import load_rules

    rules = load_rules()
    items = rules["item_map"]
    urine = set(items.loc[items["source_table"] == "outputevents", "itemid"].astype(str))
    fluids = set(rules["fluid_items"]["itemid"].astype(str))
    vaso = set(rules["vasopressor_equivalents"]["itemid"].astype(str))
    for table, column, read, value in (("OUTPUTEVENTS", "iserror", urine, "2"),
                                       ("INPUTEVENTS_MV", "statusdescription", fluids, "Bogus"),
                                       ("INPUTEVENTS_CV", "stopped", vaso, "Maybe")):
        def edit(f: pd.DataFrame, column: str = column, read: set[str] = read, value: str = value) -> None:
            f.loc[f.index[f["itemid"].isin(read)][0], column] = value
        _rewrite_csv(source / f"{table}.csv.gz", edit)
    return {"iserror_code": "2.0", "statusdescription_code": "Bogus", "stopped_code": "Maybe"}


def test_events_years_outside_their_stay_are_quarantined(tmp_path: Path) -> None:
    from .mimic_builders import septic_stay_tables, write_mimic4

    tables = septic_stay_tables()
    tables["chartevents"].append({**tables["chartevents"][0], "charttime": "1907-01-01 10:05:00"})
    tables["inputevents"].append({**tables["inputevents"][0], "starttime": "1907-01-01 10:00:00",
                                  "amount": 500})  # ends inside the window: a 243-year infusion
    source = write_mimic4(tmp_path / "src", tables)
    manifest = run_sepsis_pipeline(CFG, source, tmp_path / "out", show_progress=False)
    rules = {rule: n for s in manifest.stages for rule, n in s.quarantined_by_rule.items()}
    assert rules == {"event_outside_admission": 1, "dose_outside_admission": 1}
    doses = pd.read_parquet(tmp_path / "out" / "quarantine" / "doses.parquet")
    assert doses.loc[0, "failure_case"].startswith("1907-01-01 10:00:00 to 2150-01-01")
    assert "outside the hospital admission" in doses.loc[0, "reason"]
    linkage = pd.read_parquet(tmp_path / "out" / "quarantine" / "stay_linkage.parquet")
    assert linkage.loc[0, "failure_case"] == "1907-01-01 10:05:00"
    traj = pd.read_parquet(tmp_path / "out" / "trajectories.parquet")
    assert traj["fluid_ml_4h"].sum() == pytest.approx(1000.0)  # the clean bolus only


def test_mimic4_flags_rewritten_rows_and_undocumented_codes_are_quarantined(tmp_path: Path) -> None:
    from .mimic_builders import septic_stay_tables, write_mimic4

    tables = septic_stay_tables()
    for row in tables["chartevents"]:
        row["warning"] = 0
    tables["chartevents"][0]["warning"] = 1  # a documented warning: kept, as mimic-code keeps it
    tables["chartevents"][1]["warning"] = 7  # not a documented value
    bolus = tables["inputevents"][0]
    tables["inputevents"] += [{**bolus, "amount": 2000, "statusdescription": "Rewritten"},
                              {**bolus, "amount": 3000, "statusdescription": "Bogus"}]
    manifest = run_sepsis_pipeline(CFG, write_mimic4(tmp_path / "src", tables), tmp_path / "out",
                                   show_progress=False)
    rules = {s.name: s.quarantined_by_rule for s in manifest.stages}["stay_linkage"]
    assert rules == {"rewritten": 1, "statusdescription_code": 1, "warning_code": 1}
    q = pd.read_parquet(tmp_path / "out" / "quarantine" / "stay_linkage.parquet").set_index("rule")
    assert q.loc["warning_code", "failure_case"] == "7.0"
    assert "documented values" in q.loc["warning_code", "reason"]
    assert "superseded" in q.loc["rewritten", "reason"]
    traj = pd.read_parquet(tmp_path / "out" / "trajectories.parquet")
    assert traj["fluid_raw_ml_4h"].sum() == pytest.approx(1000.0)  # neither the rewritten nor the bogus row
