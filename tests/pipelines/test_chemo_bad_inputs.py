"""Bad oncology records: each case is a clear error (exit 2) or quarantine with the rule and reason."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import BadInputError, MissingSourceTable
from dosewise.pipelines import ChemoPipelineConfig, run_chemo_pipeline, write_synthetic_oncology

SALT = {"output": {"id_salt": "bad-inputs-salt-0123"}}
LONG_SALT = "output.id_salt=bad-inputs-salt-0123"
DOSE = "delivered_dose_mg__docetaxel"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clean")
    write_synthetic_oncology(root / "registry", 40, seed=9, fmt="registry", file_format="csv")
    write_synthetic_oncology(root / "omop", 40, seed=9, fmt="omop", file_format="csv")
    for fmt in ("registry", "omop"):  # no simulator truth: these are someone's export
        shutil.rmtree(root / fmt / "truth")
    return {"registry": root / "registry", "omop": root / "omop"}


def _registry(clean: dict[str, Path], tmp_path: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Path:
    frame = pd.read_csv(clean["registry"] / "registry.csv")
    frame = frame.drop_duplicates().sort_values(["patient_id", "cycle_number"]).reset_index(drop=True)
    src = tmp_path / "src"
    src.mkdir()
    edit(frame).to_csv(src / "registry.csv", index=False)
    return src


def _run(src: Path, tmp_path: Path, **cfg: object) -> tuple[dict[str, int], pd.DataFrame]:
    manifest = run_chemo_pipeline(
        ChemoPipelineConfig(**{**SALT, **cfg}), src, tmp_path / "out", show_progress=False
    )
    rules: dict[str, int] = {}
    for stage in manifest.stages:
        assert stage.rows_in == stage.rows_out + stage.rows_quarantined, stage.name
        rules.update(stage.quarantined_by_rule)
    q = pd.concat([pd.read_parquet(p) for p in (tmp_path / "out" / "quarantine").glob("*.parquet")])
    return rules, q


def _first_row_of(frame: pd.DataFrame, cycle: int) -> int:
    return int(frame.index[frame["cycle_number"] == cycle][0])


CASES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {}


def case(
    rule: str,
) -> Callable[[Callable[[pd.DataFrame], pd.DataFrame]], Callable[[pd.DataFrame], pd.DataFrame]]:
    def register(fn: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[pd.DataFrame], pd.DataFrame]:
        CASES[fn.__name__] = (fn, rule)
        return fn

    return register


@case("duplicate_cycle_number")
def conflicting_duplicate(f: pd.DataFrame) -> pd.DataFrame:
    row = f.loc[[_first_row_of(f, 2)]].assign(**{DOSE: 1.0})
    return pd.concat([f, row], ignore_index=True)


@case("cycle_number_gap")
def gap(f: pd.DataFrame) -> pd.DataFrame:
    return f.drop(index=_first_row_of(f, 2))


@case("dose_above_max")
def overdose(f: pd.DataFrame) -> pd.DataFrame:
    i = _first_row_of(f, 2)
    # 1.6 x the planned dose of a 3 m2 patient: above 1.5 x planned for every recorded BSA here
    f.loc[i, DOSE] = 1.6 * f.loc[i, "planned_dose_mg_per_m2__docetaxel"] * 3.0
    return f


@case("negative_dose")
def negative(f: pd.DataFrame) -> pd.DataFrame:
    f.loc[_first_row_of(f, 1), DOSE] = -10.0
    return f


@case("dose_without_planned")
def no_plan(f: pd.DataFrame) -> pd.DataFrame:
    f.loc[_first_row_of(f, 3), "planned_dose_mg_per_m2__docetaxel"] = np.nan
    return f


@case("missing_bsa")
def no_body_size(f: pd.DataFrame) -> pd.DataFrame:
    f.loc[_first_row_of(f, 2), ["bsa_m2", "height_cm", "weight_kg"]] = np.nan
    return f


@case("cycle_dates_out_of_order")
def dates_backwards(f: pd.DataFrame) -> pd.DataFrame:
    i = _first_row_of(f, 2)
    f.loc[i, "cycle_start_date"] = str(
        (pd.Timestamp(f.loc[i - 1, "cycle_start_date"]) - pd.Timedelta(days=3)).date()
    )
    return f


@case("cycle_date_outside_life")
def before_birth(f: pd.DataFrame) -> pd.DataFrame:
    f.loc[f["patient_id"] == f.loc[0, "patient_id"], "birth_date"] = "2030-01-01"
    return f


@case("unknown_unit")
def bad_unit(f: pd.DataFrame) -> pd.DataFrame:
    f.loc[0, "anc_unit"] = "furlongs"
    return f


@case("registry_schema")
def grade_out_of_range(f: pd.DataFrame) -> pd.DataFrame:
    f.loc[0, "grade_fatigue"] = 7
    return f


@pytest.mark.parametrize("name", sorted(CASES))
def test_registry_case_is_quarantined_with_its_rule(
    name: str, clean: dict[str, Path], tmp_path: Path
) -> None:
    edit, rule = CASES[name]
    rules, q = _run(_registry(clean, tmp_path, edit), tmp_path)
    hits = q[q["rule"].str.startswith(rule) | (q["stage"] == rule)]
    assert len(hits) >= 1, (name, rules)
    assert (hits["reason"].str.len() > 5).all()
    assert hits["row_key"].str.match(r"episode_id=ep_[0-9a-f]{16}(\||$)").all()


def test_bsa_from_height_and_weight_is_derived_and_recorded(clean: dict[str, Path], tmp_path: Path) -> None:
    def blank(f: pd.DataFrame) -> pd.DataFrame:
        f["bsa_m2"] = np.nan
        return f

    src = _registry(clean, tmp_path, blank)
    manifest = run_chemo_pipeline(ChemoPipelineConfig(**SALT), src, tmp_path / "out", show_progress=False)
    n = int(pd.read_csv(src / "registry.csv").shape[0])
    assert manifest.extra["bsa_derived_mosteller"] == n


def test_cells_per_microlitre_are_converted(clean: dict[str, Path], tmp_path: Path) -> None:
    def to_cells(f: pd.DataFrame) -> pd.DataFrame:
        f = f[f["anc_unit"] == "10^9/L"].copy()
        f["anc"] *= 1000
        f["anc_unit"] = "cells/uL"
        return f

    src = _registry(clean, tmp_path, to_cells)
    run_chemo_pipeline(ChemoPipelineConfig(**SALT), src, tmp_path / "out", show_progress=False)
    traj = pd.read_parquet(tmp_path / "out" / "trajectories.parquet")
    assert 0.5 < traj["anc_1e9_per_l"].median() < 20


def test_unknown_regimen_is_an_error_naming_it_or_quarantined(clean: dict[str, Path], tmp_path: Path) -> None:
    def rename(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[f["patient_id"] == f.loc[0, "patient_id"], "regimen"] = "FOLFIRINOX_custom"
        return f

    src = _registry(clean, tmp_path, rename)
    with pytest.raises(BadInputError, match="FOLFIRINOX_custom") as err:
        run_chemo_pipeline(ChemoPipelineConfig(**SALT), src, tmp_path / "o1", show_progress=False)
    assert "docetaxel_75_q3w" in err.value.hint
    rules, _ = _run(src, tmp_path, input={"unknown_regimen": "quarantine"})
    assert rules["unknown_regimen"] >= 1


def test_missing_registry_column_exits_2_naming_it(clean: dict[str, Path], tmp_path: Path) -> None:
    src = _registry(clean, tmp_path, lambda f: f.drop(columns=["cycle_start_date"]))
    result = CliRunner().invoke(
        app, ["etl", "chemo", "--source", str(src), "--out", str(tmp_path / "o"), "--set", LONG_SALT]
    )
    assert result.exit_code == 2 and "cycle_start_date" in result.output


def test_missing_omop_table_exits_2_naming_it(clean: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "omop"
    shutil.copytree(clean["omop"], src)
    (src / "episode_event.csv").unlink()
    with pytest.raises(MissingSourceTable, match="episode_event"):
        run_chemo_pipeline(ChemoPipelineConfig(**SALT), src, tmp_path / "o", show_progress=False)
    result = CliRunner().invoke(
        app,
        ["etl", "chemo", "--source", str(src), "--out", str(tmp_path / "o2"), "--set", LONG_SALT],
    )
    assert result.exit_code == 2 and "episode_event" in result.output


def test_omop_unknown_drug_concept_and_measurements_outside_life(
    clean: dict[str, Path], tmp_path: Path
) -> None:
    src = tmp_path / "omop"
    shutil.copytree(clean["omop"], src)
    drugs = pd.read_csv(src / "drug_exposure.csv")
    drugs.loc[0, "drug_concept_id"] = 999999001
    drugs.to_csv(src / "drug_exposure.csv", index=False)
    meas = pd.read_csv(src / "measurement.csv")
    meas.loc[0, "measurement_date"] = "1901-01-01"
    meas.to_csv(src / "measurement.csv", index=False)
    with pytest.raises(BadInputError, match="999999001"):
        run_chemo_pipeline(ChemoPipelineConfig(**SALT), src, tmp_path / "o", show_progress=False)
    rules, _ = _run(src, tmp_path, input={"unknown_regimen": "quarantine"})
    assert rules["unknown_drug_concept"] == 1 and rules["measurement_outside_life"] >= 1
    # the exposure's cycle is incomplete, not a hold: it is quarantined (and the patient's later cycles)
    assert rules["cycle_with_unknown_drug"] == 1


def test_unknown_drug_cycle_with_the_simulator_truth_is_quarantined_not_held(tmp_path: Path) -> None:
    """With the truth attached, a cycle read as a hold that the simulated clinicians never gave had
    behaviour_prob 0 and stopped the run; the incomplete cycle is now quarantined instead."""
    src = tmp_path / "omop"
    write_synthetic_oncology(src, 30, seed=4, fmt="omop", file_format="csv")
    drugs = pd.read_csv(src / "drug_exposure.csv")
    drugs.loc[[0, 7], "drug_concept_id"] = 999999002
    drugs.to_csv(src / "drug_exposure.csv", index=False)
    rules, _ = _run(src, tmp_path, input={"unknown_regimen": "quarantine"})
    assert rules["unknown_drug_concept"] == 2 and 1 <= rules["cycle_with_unknown_drug"] <= 2
    traj = pd.read_parquet(tmp_path / "out" / "trajectories.parquet")
    assert (traj["behaviour_prob"] > 0).all()


def test_check_sources_recognises_registry_and_omop(clean: dict[str, Path], tmp_path: Path) -> None:
    for fmt, label in (("registry", "Flat cycle-level registry"), ("omop", "OMOP CDM v5.4")):
        result = CliRunner().invoke(app, ["etl", "check-sources", "--source", str(clean[fmt])])
        assert result.exit_code == 0 and label in result.output, result.output
    src = tmp_path / "omop"
    shutil.copytree(clean["omop"], src)
    (src / "episode.csv").unlink()
    result = CliRunner().invoke(app, ["etl", "check-sources", "--source", str(src)])
    assert result.exit_code == 2 and "episode" in result.output


def _plant_dirt(clean: dict[str, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A registry and an OMOP folder with quarantined rows at every stage that names patients."""
    def edit(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[_first_row_of(f, 3), "grade_fatigue"] = 7  # sources: schema
        f.loc[_first_row_of(f, 2), "anc_unit"] = "furlongs"  # units
        f.loc[_first_row_of(f, 4), DOSE] = -1.0  # cycles (+ follows_ rows)
        return f

    registry = _registry(clean, tmp_path, edit)
    omop = tmp_path / "omop"
    shutil.copytree(clean["omop"], omop)
    meas = pd.read_csv(omop / "measurement.csv")
    meas.loc[0, "measurement_date"] = "1901-01-01"
    meas.loc[1, "unit_source_value"] = "furlongs"
    pd.concat([meas, meas.iloc[[5]]]).to_csv(omop / "measurement.csv", index=False)
    person = pd.read_csv(omop / "person.csv")
    person.loc[2, "year_of_birth"] = -5  # fails the person schema: keyed by the person alone
    person.to_csv(omop / "person.csv", index=False)
    return registry, omop


def test_chemo_quarantine_names_patients_by_the_trajectories_pseudonyms(
    clean: dict[str, Path], tmp_path: Path
) -> None:
    from dosewise.pipelines.privacy import pseudonymize_ids

    salt = SALT["output"]["id_salt"]
    for src in _plant_dirt(clean, tmp_path):
        out = tmp_path / f"out_{src.name}"
        manifest = run_chemo_pipeline(ChemoPipelineConfig(**SALT), src, out, show_progress=False)
        q = pd.concat([pd.read_parquet(p) for p in (out / "quarantine").glob("*.parquet")])
        assert {"sources", "cycles", "units"} & {p.stem for p in (out / "quarantine").glob("*.parquet")}
        assert len(q) >= 4 and not q["row_key"].str.contains("patient_id=|person_id=").any(), q["row_key"]
        first = q["row_key"].str.split("|").str[0]
        assert first.str.fullmatch(r"episode_id=ep_[0-9a-f]{16}").all(), first.tolist()
        table = "registry.csv" if src.name == "src" else "person.csv"
        raw_ids = pd.read_csv(src / table)["patient_id" if src.name == "src" else "person_id"].unique()
        assert set(first.str.removeprefix("episode_id=")) <= set(pseudonymize_ids(raw_ids, salt))
        # a patient truncated at a bad cycle keeps its earlier cycles under the same episode id
        cohort = set(pd.read_parquet(out / "cohort.parquet")["episode_id"])
        assert set(first.str.removeprefix("episode_id=")) & cohort
        assert manifest.extra["id_salt_fingerprint"] and salt not in (out / "manifest.json").read_text()
    raw = run_chemo_pipeline(ChemoPipelineConfig(output={"pseudonymize_ids": False}), src, tmp_path / "raw",
                             show_progress=False)
    keys = pd.concat([pd.read_parquet(p) for p in (tmp_path / "raw" / "quarantine").glob("*.parquet")])
    assert keys["row_key"].str.match(r"patient_id=\d+(\||$)").all()
    assert raw.extra["id_salt_fingerprint"] is None


def test_omop_rows_are_checked_against_the_schemas_in_duckdb(clean: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "omop"
    shutil.copytree(clean["omop"], src)
    person = pd.read_csv(src / "person.csv", dtype=str, keep_default_na=False)
    person = pd.concat([person, person.iloc[[0]]], ignore_index=True)  # person 1 twice
    person.loc[1, "year_of_birth"] = "1700"
    person.to_csv(src / "person.csv", index=False)
    meas = pd.read_csv(src / "measurement.csv", dtype=str, keep_default_na=False)
    meas.loc[3, "person_id"] = "2.5"  # not an id: quarantined, not truncated to 2
    meas.loc[4, "measurement_date"] = "2020-02-30"
    meas.to_csv(src / "measurement.csv", index=False)
    rules, q = _run(src, tmp_path)
    assert rules["person_id:field_uniqueness"] == 2 and rules["year_of_birth:in_range(1880, 2100)"] == 1
    assert rules["person_id:coerce_dtype('int64')"] == 1
    assert rules["measurement_date:coerce_dtype('datetime64[ns]')"] == 1
    bad_date = q[q["rule"] == "measurement_date:coerce_dtype('datetime64[ns]')"]
    assert bad_date["failure_case"].tolist() == ["2020-02-30"]


def test_unreadable_registry_row_is_named_by_line_never_by_its_values(
    clean: dict[str, Path], tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    lines = (clean["registry"] / "registry.csv").read_text().splitlines()
    lines.insert(5, "99123,docetaxel_75_q3w,1,2019-01-01")  # a cut-off row (pyarrow quotes it in full)
    (src / "registry.csv").write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["etl", "chemo", "--source", str(src), "--out", str(tmp_path / "o"),
                                      "--config", "chemo_registry", "--set", LONG_SALT],
                                env={"COLUMNS": "1000"})
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "registry.csv" in text and "line 6 has 4 fields" in text
    assert "99123" not in text and "2019-01-01" not in text
