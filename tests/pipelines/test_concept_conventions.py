"""Issue 13 conventions on hand-built MIMIC-IV stays: onset times, every suspicion, GCS under sedation,
arterial PaO2 and FiO2, bounds only in rules/, irrigation, and concepts built without chartevents."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pandas as pd
import pytest

from dosewise.data_schemas import RunManifest
from dosewise.pipelines.concepts import write_concept_tables
from dosewise.pipelines.sources.duckdb_catalog import MimicCatalog
from dosewise.pipelines.sources.mimic_layout import detect_layout

from .mimic_builders import merge_tables, septic_stay_tables, write_mimic4

PARAMS = {"cv_rate_hold_hours": 1, "weight_fallback": "fixed", "weight_fallback_kg": 70.0}


def _chart(t: dict, hhmm: str, itemid: int, value: str, valuenum: float | None) -> None:
    sid = {k: t["icustays"][0][k] for k in ("subject_id", "hadm_id", "stay_id")}
    t["chartevents"].append(
        {**sid, "charttime": f"2150-01-01 {hhmm}:00", "itemid": itemid, "value": value, "valuenum": valuenum,
         "valueuom": ""}
    )


def _gases(t: dict, gases: list[tuple[str, str, float]]) -> None:
    ids = {k: t["icustays"][0][k] for k in ("subject_id", "hadm_id")}
    for hhmm, specimen, po2 in gases:
        t["labevents"] += [
            {**ids, "itemid": 52033, "charttime": f"2150-01-01 {hhmm}:00", "value": specimen, "valuenum": "",
             "valueuom": ""},
            {**ids, "itemid": 50821, "charttime": f"2150-01-01 {hhmm}:00", "value": str(po2), "valuenum": po2,
             "valueuom": "mm Hg"},
        ]


def _culture_date_only() -> dict:
    """Stay 2: a culture with only a chart date, then an antibiotic at 15:10 the same day; not ventilated,
    an arterial gas at 14:00 with no FiO2 charted in the 4 h before (FiO2 at 09:00)."""
    t = septic_stay_tables(stay_id=2, subject_id=2, hadm_id=2)
    t["microbiologyevents"][0]["charttime"] = ""
    t["prescriptions"][0]["starttime"] = "2150-01-01 15:10:00"
    _gases(t, [("14:00", "ART.", 60)])
    return t


def _late_suspicion() -> dict:
    """Stay 3: a first suspicion on day 1 with no SOFA data near it, a second on day 4 with SOFA >= 2."""
    t = septic_stay_tables(stay_id=3, subject_id=3, hadm_id=3)
    t["icustays"][0]["outtime"] = "2150-01-08 08:00:00"
    late = "2150-01-05"
    for row in t["chartevents"] + t["labevents"] + t["outputevents"]:
        row["charttime"] = row["charttime"].replace("2150-01-01", late)
    for row in t["inputevents"]:
        row["starttime"] = row["starttime"].replace("2150-01-01", late)
        row["endtime"] = row["endtime"].replace("2150-01-01", late)
    t["microbiologyevents"].append({**t["microbiologyevents"][0], "chartdate": f"{late} 00:00:00",
                                    "charttime": f"{late} 10:00:00"})
    t["prescriptions"].append({**t["prescriptions"][0], "starttime": f"{late} 11:00:00"})
    t["prescriptions"][0]["stoptime"] = "2150-01-01 20:00:00"
    return t


def _sedated_and_gases() -> dict:
    """Stay 4: GCS 9 awake, then intubated (verbal not testable); arterial and venous gases."""
    t = septic_stay_tables(stay_id=4, subject_id=4, hadm_id=4)
    t["chartevents"] = [r for r in t["chartevents"] if r["itemid"] not in (220739, 223900, 223901, 223835)]
    _chart(t, "09:00", 220739, "2", 2)
    _chart(t, "09:00", 223900, "3", 3)
    _chart(t, "09:00", 223901, "4", 4)  # GCS 9 before sedation
    _chart(t, "20:00", 220739, "1", 1)
    _chart(t, "20:00", 223900, "No Response-ETT", 1)  # intubated: verbal not testable
    _chart(t, "20:00", 223901, "5", 5)
    _chart(t, "12:00", 223849, "CMV", None)  # ventilator mode: ventilated from 12:00
    ids = {"subject_id": 4, "hadm_id": 4}
    _gases(t, [("13:00", "VEN.", 40), ("14:00", "ART.", 60), ("18:00", "ART.", 150)])
    _chart(t, "17:30", 223835, "50", 50)  # FiO2 50 % within 4 h of the 18:00 gas only
    at = {**ids, "stay_id": 4, "charttime": "2150-01-01 09:45:00", "valueuom": "mL"}
    t["outputevents"] += [{**at, "itemid": 227488, "value": 1000}, {**at, "itemid": 227489, "value": 1250}]
    return t


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tables = merge_tables(septic_stay_tables(), _culture_date_only(), _late_suspicion(), _sedated_and_gases())
    return write_mimic4(tmp_path_factory.mktemp("conventions"), tables)


@pytest.fixture(scope="module")
def catalog(folder: Path) -> MimicCatalog:
    cat = MimicCatalog(detect_layout(folder), PARAMS, threads=1)
    cat.build()
    return cat


def _df(cat: MimicCatalog, sql: str) -> pd.DataFrame:
    return cat.con.execute(sql).df()


def test_date_only_culture_never_wins_by_looking_earlier(catalog: MimicCatalog) -> None:
    si = _df(catalog, "SELECT * FROM suspicion_of_infection WHERE stay_id = 2")
    assert si["suspected_infection_time"].tolist() == [pd.Timestamp("2150-01-01 15:10")]  # not 00:00
    assert si["time_source"].tolist() == ["antibiotic"] and not si["suspicion_date_only"].any()


def test_every_suspicion_is_tested_and_the_first_qualifying_is_the_onset(catalog: MimicCatalog) -> None:
    si = _df(catalog, "SELECT * FROM suspicion_of_infection WHERE stay_id = 3 ORDER BY suspicion_seq")
    assert si["suspicion_seq"].tolist() == [1, 2]
    s3 = _df(catalog, "SELECT * FROM sepsis3 WHERE stay_id = 3").iloc[0]
    assert bool(s3["sepsis3"]) and s3["n_suspicions"] == 2 and s3["onset_suspicion_seq"] == 2
    assert s3["onset_time"] == pd.Timestamp("2150-01-05 10:00")
    assert _df(catalog, "SELECT stay_id FROM sepsis3")["stay_id"].is_unique


@pytest.mark.parametrize(
    ("mode", "expected", "source"),
    [("pre_sedation", 9, "pre_sedation"), ("normal", 15, "normal_15"), ("verbal_one", 7, "verbal_scored_1")],
)
def test_gcs_under_sedation(folder: Path, mode: str, expected: int, source: str) -> None:
    cat = MimicCatalog(detect_layout(folder), {**PARAMS, "gcs_under_sedation": mode}, threads=1)
    cat.build(["gcs"])
    gcs = _df(cat, "SELECT * FROM gcs WHERE stay_id = 4 ORDER BY charttime")
    assert gcs["gcs_total"].tolist() == [9, expected] and gcs["gcs_source"].tolist() == ["measured", source]
    assert gcs["gcs_unable"].tolist() == [False, True]


def test_respiratory_sofa_uses_arterial_gases_and_the_fio2_rule(catalog: MimicCatalog) -> None:
    resp = _df(catalog, "SELECT stay_id, hr, respiration_24h AS r FROM sofa WHERE stay_id IN (2, 4)")
    resp = resp.set_index(["stay_id", "hr"])["r"]
    # stay 4 is ventilated from 12:00. 13:00 venous PaO2 40 is ignored (it would score 3)
    assert resp[(4, 5)] == 0
    # 14:00 arterial 60, ventilated, no FiO2 within 4 h: no ratio (room air would give 286 -> 2 points)
    assert resp[(4, 6)] == 0
    # 18:00 arterial 150 on FiO2 0.5 charted at 17:30: P/F 300 -> 1 point
    assert resp[(4, 10)] == 1
    # stay 2, not ventilated, no FiO2 within 4 h of its 14:00 gas: room air, 60 / 0.21 = 286 -> 2 points
    assert resp[(2, 5)] == 0 and resp[(2, 6)] == 2


def test_irrigation_nets_out_of_urine_output(catalog: MimicCatalog) -> None:
    uo = _df(catalog, "SELECT urine_output_ml FROM urine_output WHERE stay_id = 4 AND hour(charttime) = 9 "
                      "AND minute(charttime) = 45")
    assert uo["urine_output_ml"].tolist() == [250.0]


def test_no_bound_is_written_in_concept_sql() -> None:
    root = files("dosewise.pipelines") / "sql"
    for folder in ("common", "mimic_iii", "mimic_iv"):
        for entry in (root / folder).iterdir():
            if entry.name.endswith(".sql"):
                body = "\n".join(ln for ln in entry.read_text().splitlines() if not ln.startswith("--"))
                found = re.findall(r"BETWEEN\s+-?\d[\d.]*\s+AND\s+-?\d", body)
                assert not found, f"{folder}/{entry.name} repeats bounds {found}; keep them in rules/"


def test_vasopressor_dose_without_chartevents(tmp_path: Path) -> None:
    tables = septic_stay_tables()
    del tables["chartevents"]
    source = write_mimic4(tmp_path / "src", tables)
    manifest = write_concept_tables(source, tmp_path / "out", ["norepinephrine_equivalent_dose"])
    assert manifest.extra["empty_optional_inputs"] == ["weight"]
    ne = pd.read_parquet(tmp_path / "out" / "concepts" / "norepinephrine_equivalent_dose.parquet")
    assert set(ne["weight_source"]) == {"not_needed", "infusion_weight"}
    assert ne.set_index("drug").loc["phenylephrine", "norepi_eq_mcg_kg_min"] == pytest.approx(100 / 80 * 0.1)
    every = write_concept_tables(source, tmp_path / "all")
    assert "norepinephrine_equivalent_dose" in every.extra["rows"]
    assert {"chart_measurements", "weight", "gcs", "sofa", "sepsis3"} <= set(every.extra["skipped"])
    assert RunManifest.read(tmp_path / "all").extra["skipped"]["weight"] == "chartevents"
