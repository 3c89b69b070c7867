"""Every concept SQL file runs on small MIMIC-IV-shaped inputs; unit conversions and clinical rules hold."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dosewise.pipelines.sources.duckdb_catalog import MimicCatalog, load_concepts
from dosewise.pipelines.sources.mimic_layout import detect_layout

from .mimic_builders import merge_tables, septic_stay_tables, write_mimic4

PARAMS = {"cv_rate_hold_hours": 4, "weight_fallback": "fixed", "weight_fallback_kg": 70.0}


def _abx_then_culture() -> dict:
    t = septic_stay_tables(stay_id=2, subject_id=2, hadm_id=2)
    t["prescriptions"][0]["starttime"] = "2150-01-01 08:30:00"
    t["microbiologyevents"][0]["charttime"] = "2150-01-01 20:00:00"
    return t


def _culture_too_early() -> dict:
    t = septic_stay_tables(stay_id=3, subject_id=3, hadm_id=3)
    t["microbiologyevents"][0]["charttime"] = "2149-12-28 09:00:00"  # > 72 h before the antibiotic
    t["inputevents"] = []
    return t


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> MimicCatalog:
    folder = write_mimic4(
        tmp_path_factory.mktemp("mimic4"),
        merge_tables(septic_stay_tables(), _abx_then_culture(), _culture_too_early()),
    )
    cat = MimicCatalog(detect_layout(folder), PARAMS, threads=1)
    cat.build()
    return cat


def _df(cat: MimicCatalog, sql: str) -> pd.DataFrame:
    return cat.con.execute(sql).df()


def test_every_concept_file_has_a_header_and_builds(catalog: MimicCatalog) -> None:
    for version in ("mimic_iv", "mimic_iii"):
        for name, concept in load_concepts(version).items():
            for key in ("title", "reference", "units"):
                assert f"-- {key}:" in concept.sql, f"{version}/{name}.sql lacks a `{key}` header"
    assert set(catalog.built) == set(load_concepts("mimic_iv"))


@pytest.mark.parametrize("table", ["icustay_detail", "weight"])
def test_one_row_per_stay(catalog: MimicCatalog, table: str) -> None:
    frame = _df(catalog, f"SELECT stay_id FROM {table}")
    assert sorted(frame["stay_id"]) == [1, 2, 3]


def test_unit_conversions(catalog: MimicCatalog) -> None:
    chart = _df(catalog, "SELECT variable, valuenum FROM chart_measurements WHERE stay_id = 1")
    value = chart.groupby("variable")["valuenum"].first()
    assert value["temp_c"] == pytest.approx(38.5)  # 101.3 F
    assert value["weight_kg"] == pytest.approx(80.0, abs=1e-3)  # 176.37 lb
    assert value["fio2_frac"] == pytest.approx(0.5)  # 50 %
    gcs = _df(catalog, "SELECT gcs_total FROM gcs WHERE stay_id = 1")
    assert gcs["gcs_total"].tolist() == [12]


def test_norepinephrine_equivalents(catalog: MimicCatalog) -> None:
    ne = _df(
        catalog,
        "SELECT drug, norepi_eq_mcg_kg_min, weight_source FROM norepinephrine_equivalent_dose "
        "WHERE stay_id = 1",
    ).set_index("drug")
    assert ne.loc["norepinephrine", "norepi_eq_mcg_kg_min"] == pytest.approx(0.1)
    assert ne.loc["phenylephrine", "norepi_eq_mcg_kg_min"] == pytest.approx(
        100 / 80 * 0.1
    )  # mcg/min / kg x 0.1
    assert ne.loc["phenylephrine", "weight_source"] == "infusion_weight"
    assert ne.loc["vasopressin", "norepi_eq_mcg_kg_min"] == pytest.approx(
        2.4 / 60 * 2.5
    )  # units/h -> U/min x 2.5


def test_suspicion_of_infection_rules(catalog: MimicCatalog) -> None:
    si = _df(catalog, "SELECT stay_id, suspected_infection_time FROM suspicion_of_infection").set_index(
        "stay_id"
    )
    assert si.loc[1, "suspected_infection_time"] == pd.Timestamp("2150-01-01 10:00")  # culture, then abx
    assert si.loc[2, "suspected_infection_time"] == pd.Timestamp(
        "2150-01-01 08:30"
    )  # abx, then culture < 24 h
    assert 3 not in si.index  # culture more than 72 h before the antibiotic


def test_sofa_and_sepsis3(catalog: MimicCatalog) -> None:
    sofa = _df(catalog, "SELECT * FROM sofa WHERE stay_id = 1 ORDER BY hr")
    assert sofa["hr"].is_unique and sofa["hr"].min() == -24
    assert (
        sofa["sofa_24h"] == sofa[[c for c in sofa if c.endswith("_24h") and c != "sofa_24h"]].sum(axis=1)
    ).all()
    last = sofa.set_index("hr").loc[12]  # 20:00 on day 1: labs, GCS and vasopressors within 24 h
    assert last["renal_24h"] >= 2 and last["cns_24h"] == 2 and last["coagulation_24h"] == 2
    assert last["cardiovascular_24h"] == 4  # NE-equivalent > 0.1 mcg/kg/min
    sepsis = _df(catalog, "SELECT * FROM sepsis3 ORDER BY stay_id").set_index("stay_id")
    assert bool(sepsis.loc[1, "sepsis3"]) and sepsis.loc[1, "onset_time"] == pd.Timestamp("2150-01-01 10:00")
    assert sepsis.index.is_unique


def test_fluid_input(catalog: MimicCatalog) -> None:
    fluids = _df(catalog, "SELECT * FROM fluid_input WHERE stay_id = 1")
    assert fluids["amount_ml"].tolist() == [1000.0] and fluids["fluid_class"].tolist() == ["crystalloid"]


def test_mimic3_concepts_run_on_the_real_demo(mimic3_demo_dir: Path) -> None:
    cat = MimicCatalog(detect_layout(mimic3_demo_dir), PARAMS)
    cat.build(["sepsis3", "vitals", "labs"])
    stays = _df(cat, "SELECT stay_id, care_system FROM icustay_detail")
    assert len(stays) == 136 and stays["stay_id"].is_unique
    assert set(stays["care_system"]) == {"carevue", "metavision"}
    sepsis = _df(cat, "SELECT * FROM sepsis3")
    assert sepsis["stay_id"].is_unique and sepsis["sepsis3"].sum() > 0
    temps = _df(cat, "SELECT valuenum FROM vitals WHERE variable = 'temp_c' AND valuenum IS NOT NULL")
    assert temps["valuenum"].between(25, 45).mean() > 0.99  # Fahrenheit items converted


def test_rule_tables_are_complete_and_cited() -> None:
    from dosewise.pipelines.sources.duckdb_catalog import load_rules

    rules = load_rules()
    for name, frame in rules.items():
        assert "reference" in frame and frame["reference"].notna().all(), f"rules/{name}.csv lacks references"
    bounded = set(rules["outlier_bounds"]["variable"])
    mapped = set(rules["item_map"]["variable"]) - {"gcs_eye", "gcs_verbal", "gcs_motor"}
    assert mapped <= bounded, f"variables without outlier bounds: {sorted(mapped - bounded)}"
    assert set(rules["hold_hours"]["variable"]) <= bounded
    assert set(rules["unit_conversions"]["conversion"]) >= set(rules["item_map"]["conversion"])
