"""Synthetic MIMIC-IV: official files and columns, determinism, planted cases, quirks, dirt, memory."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import MANIFEST_NAME, BadInputError, RunManifest
from dosewise.pipelines import SyntheticIcuConfig, write_synthetic_icu
from dosewise.pipelines.simulators import synthetic_icu as synth
from dosewise.pipelines.simulators.synthetic_icu_physiology import draw_cohort, simulate_course

# The official MIMIC-IV v2.2 column lists (mimic.mit.edu/docs/iv, hosp and icu modules), typed
# independently of the generator so the test is an oracle, not a tautology.
OFFICIAL = {
    "hosp/patients": "subject_id gender anchor_age anchor_year anchor_year_group dod",
    "hosp/admissions": "subject_id hadm_id admittime dischtime deathtime admission_type "
                       "admit_provider_id admission_location discharge_location insurance language "
                       "marital_status race edregtime edouttime hospital_expire_flag",
    "hosp/d_labitems": "itemid label fluid category",
    "hosp/labevents": "labevent_id subject_id hadm_id specimen_id itemid order_provider_id charttime "
                      "storetime value valuenum valueuom ref_range_lower ref_range_upper flag priority "
                      "comments",
    "hosp/microbiologyevents": "microevent_id subject_id hadm_id micro_specimen_id order_provider_id "
                               "chartdate charttime spec_itemid spec_type_desc test_seq storedate "
                               "storetime test_itemid test_name org_itemid org_name isolate_num "
                               "quantity ab_itemid ab_name dilution_text dilution_comparison "
                               "dilution_value interpretation comments",
    "hosp/prescriptions": "subject_id hadm_id pharmacy_id poe_id poe_seq order_provider_id starttime "
                          "stoptime drug_type drug formulary_drug_cd gsn ndc prod_strength form_rx "
                          "dose_val_rx dose_unit_rx form_val_disp form_unit_disp doses_per_24_hrs route",
    "icu/icustays": "subject_id hadm_id stay_id first_careunit last_careunit intime outtime los",
    "icu/d_items": "itemid label abbreviation linksto category unitname param_type lownormalvalue "
                   "highnormalvalue",
    "icu/chartevents": "subject_id hadm_id stay_id caregiver_id charttime storetime itemid value "
                       "valuenum valueuom warning",
    "icu/inputevents": "subject_id hadm_id stay_id caregiver_id starttime endtime storetime itemid "
                       "amount amountuom rate rateuom orderid linkorderid ordercategoryname "
                       "secondaryordercategoryname ordercomponenttypedescription "
                       "ordercategorydescription patientweight totalamount totalamountuom isopenbag "
                       "continueinnextdept statusdescription originalamount originalrate",
    "icu/outputevents": "subject_id hadm_id stay_id caregiver_id charttime storetime itemid value "
                        "valueuom",
    "icu/procedureevents": "subject_id hadm_id stay_id caregiver_id starttime endtime storetime itemid "
                           "value valueuom location locationcategory orderid linkorderid "
                           "ordercategoryname ordercategorydescription patientweight isopenbag "
                           "continueinnextdept statusdescription originalamount originalrate",
}
INTEGER_COLUMNS = {"subject_id", "hadm_id", "stay_id", "itemid", "caregiver_id", "labevent_id",
                   "specimen_id", "orderid", "linkorderid", "anchor_age", "anchor_year",
                   "hospital_expire_flag", "microevent_id", "micro_specimen_id", "pharmacy_id"}
TIME_COLUMNS = {"admittime", "dischtime", "deathtime", "edregtime", "edouttime", "charttime",
                "storetime", "intime", "outtime", "starttime", "endtime", "stoptime", "chartdate",
                "storedate"}
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
CONFIG = SyntheticIcuConfig(chunk_stays=40, dirt_rate=0.01, minor_fraction=0.05)


def read(folder: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{table}.csv.gz", dtype=str, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic_mimic_iv")
    write_synthetic_icu(folder, 150, seed=7, show_progress=False, config=CONFIG)
    return folder


def test_files_columns_and_types_match_official_mimic_iv(raw: Path) -> None:
    for table, columns in OFFICIAL.items():
        with gzip.open(raw / f"{table}.csv.gz", "rt") as handle:
            assert handle.readline().strip().split(",") == columns.split(), table
        frame = read(raw, table)
        assert len(frame) > 0, table
        for column in frame.columns:
            values = frame[column].dropna()
            if column in INTEGER_COLUMNS:
                assert values.str.fullmatch(r"-?\d+").all(), (table, column)
            if column in TIME_COLUMNS:
                assert values.str.match(STAMP).all(), (table, column)
                years = values.str[:4].astype(int)
                assert years.between(2110, 2215).all(), (table, column)
        if "valuenum" in frame.columns:
            pd.to_numeric(frame["valuenum"], errors="raise")
    dod = read(raw, "hosp/patients")["dod"].dropna()
    assert dod.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()


def test_covers_every_column_the_etl_reads(raw: Path) -> None:
    raw_mimic = pytest.importorskip("dosewise.data_schemas.raw_mimic")
    for spec in raw_mimic.MIMIC_IV_TABLES.values():
        path = raw / spec.module / f"{spec.stem}.csv.gz"
        if not path.is_file():
            assert not spec.required, f"generator misses required table {spec.stem}"
            continue
        with gzip.open(path, "rt") as handle:
            header = handle.readline().strip().split(",")
        assert set(spec.columns) <= set(header), (spec.stem, set(spec.columns) - set(header))


def test_ids_link_up_and_events_fall_inside_stays_except_planted_dirt(raw: Path) -> None:
    def frame(table: str) -> pd.DataFrame:
        return pd.read_csv(raw / f"{table}.csv.gz")

    patients, admissions, stays = frame("hosp/patients"), frame("hosp/admissions"), frame("icu/icustays")
    assert patients["subject_id"].is_unique and stays["stay_id"].is_unique
    assert admissions["hadm_id"].is_unique and set(admissions["hadm_id"]) == set(stays["hadm_id"])
    assert set(patients["subject_id"]) == set(stays["subject_id"])
    joined = stays.merge(admissions, on=["subject_id", "hadm_id"])
    assert (joined["admittime"] <= joined["intime"]).all()
    assert (joined["outtime"] <= joined["dischtime"]).all()
    windows = stays[["stay_id", "intime", "outtime"]]
    dirt = RunManifest.read(raw).extra["dirt"]
    chart = frame("icu/chartevents")
    orphans = ~chart["stay_id"].isin(windows["stay_id"])
    assert dirt["chartevents_unknown_stay_id"] <= orphans.sum()
    assert orphans.sum() <= dirt["chartevents_unknown_stay_id"] + dirt["chartevents_duplicate_rows"]
    chart = chart.merge(windows, on="stay_id")
    outside = (chart["charttime"] < chart["intime"]) | (chart["charttime"] > chart["outtime"])
    planted = dirt["chartevents_outside_stay"]
    assert planted <= outside.sum() <= planted + dirt["chartevents_duplicate_rows"]
    for table, column in (("icu/inputevents", "starttime"), ("icu/outputevents", "charttime")):
        events = frame(table).merge(windows, on="stay_id")
        assert events[column].between(events["intime"], events["outtime"]).all(), table


def test_dictionaries_describe_every_item_used(raw: Path) -> None:
    d_items = read(raw, "icu/d_items")
    assert d_items["itemid"].is_unique
    linked = dict(zip(d_items["itemid"], d_items["linksto"], strict=True))
    for table in ("chartevents", "inputevents", "outputevents", "procedureevents"):
        used = set(read(raw, f"icu/{table}")["itemid"])
        assert used and all(linked.get(item) == table for item in used), table
    labs = set(read(raw, "hosp/d_labitems")["itemid"])
    assert set(read(raw, "hosp/labevents")["itemid"]) <= labs
    assert {"50813", "50912", "50885", "51265", "51301", "50821"} <= labs  # SOFA and lactate labs


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    config = SyntheticIcuConfig(chunk_stays=10)
    hashes = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        hashes.append(write_synthetic_icu(tmp_path / name, 25, seed, False, config=config).outputs)
    assert hashes[0] == hashes[1]
    assert len(hashes[0]) == len(OFFICIAL) + 1  # the tables plus truth/stays
    assert hashes[0]["icu/chartevents.csv.gz"] != hashes[2]["icu/chartevents.csv.gz"]


def test_planted_sepsis_meets_the_suspicion_rule_and_organ_dysfunction(raw: Path) -> None:
    truth = read(raw, "truth/stays")
    planted = truth[truth["planted_sepsis"] == "true"]
    assert 0.2 * len(truth) < len(planted) < 0.5 * len(truth)
    abx = read(raw, "hosp/prescriptions")
    abx = abx[abx["drug"].isin(synth.t.ANTIBIOTICS)]
    micro = read(raw, "hosp/microbiologyevents")
    micro["time"] = pd.to_datetime(micro["charttime"].fillna(micro["chartdate"]))
    pairs = abx.assign(ab=pd.to_datetime(abx["starttime"]))[["hadm_id", "ab"]].merge(
        micro[["hadm_id", "time"]], on="hadm_id")
    hours = (pairs["time"] - pairs["ab"]).dt.total_seconds() / 3600
    pairs["suspected"] = ((hours >= 0) & (hours <= 24)) | ((hours < 0) & (hours >= -72))
    suspected = set(pairs.loc[pairs["suspected"], "hadm_id"])
    assert set(planted["hadm_id"]) <= suspected
    distractors = truth[truth["case"] == "none"]
    assert len(set(distractors["hadm_id"]) & suspected) == 0
    shocked = planted["min_map_mmhg"].astype(float) < 65
    pressors = planted["max_norepi_eq_mcg_kg_min"].astype(float) > 0
    assert (shocked | pressors).mean() > 0.7  # most septic stays are hypotensive
    lactate = planted["max_lactate_mmol_l"].astype(float)
    assert lactate.median() > 2.0


def test_unit_quirks_demographics_and_outcomes(raw: Path) -> None:
    chart = read(raw, "icu/chartevents")
    items = set(chart["itemid"].astype(int))
    assert {223761, 223762, 226512, 226531, 224639, 220045, 220277, 223835, 220739} <= items
    temp_f = chart.loc[chart["itemid"] == "223761", "valuenum"].astype(float)
    assert temp_f.median() > 95  # °F, not °C
    fio2 = chart.loc[chart["itemid"] == "223835", "valuenum"].astype(float)
    assert (fio2 <= 1).any() and (fio2 > 1).any()
    inputs = read(raw, "icu/inputevents")
    norepi_units = set(inputs.loc[inputs["itemid"] == "221906", "rateuom"])
    assert {"mcg/kg/min", "mcg/min"} <= norepi_units
    assert "L" in set(inputs["amountuom"])
    patients, admissions = read(raw, "hosp/patients"), read(raw, "hosp/admissions")
    assert (patients["anchor_age"].astype(int) < 18).any()
    died = admissions["hospital_expire_flag"] == "1"
    assert died.any() and admissions.loc[died, "deathtime"].notna().all()
    assert admissions.loc[~died, "deathtime"].isna().all()
    assert patients["subject_id"].nunique() < len(read(raw, "icu/icustays"))  # readmissions
    truth = read(raw, "truth/stays")
    after = truth.loc[truth["died_after_discharge"] == "true", "subject_id"]
    assert after.size and patients.set_index("subject_id").loc[after, "dod"].notna().all()


def test_dirt_is_planted_counted_and_optional(raw: Path, tmp_path: Path) -> None:
    dirt = RunManifest.read(raw).extra["dirt"]
    assert dirt["chartevents_outlier_values"] > 0 and dirt["chartevents_duplicate_rows"] > 0
    chart = read(raw, "icu/chartevents")
    assert chart.duplicated().sum() >= dirt["chartevents_duplicate_rows"]
    clean = tmp_path / "clean"
    write_synthetic_icu(clean, 60, 1, False, config=SyntheticIcuConfig(dirt_rate=0.0))
    assert not any(RunManifest.read(clean).extra["dirt"].values())
    assert read(clean, "icu/chartevents").duplicated().sum() == 0
    pressors = read(clean, "icu/inputevents").query("itemid == '221906'")
    assert "mL/hour" not in set(pressors["rateuom"])


def test_physiology_responds_to_treatment() -> None:
    rng = np.random.default_rng(0)
    cohort = draw_cohort(rng, 600, SyntheticIcuConfig(sepsis_fraction=0.8))
    course = simulate_course(rng, cohort)
    ne, map_ = course.hourly["ne_eq"], course.hourly["map"]
    rows, starts = np.nonzero((ne[:, 1:] > 0) & (ne[:, :-1] == 0))
    starts = starts + 1
    ok = starts + 4 < course.los_h[rows]
    before = map_[rows[ok], starts[ok] - 1]
    after = map_[rows[ok], starts[ok] + 3]
    assert ok.sum() > 50 and np.mean(after - before) > 5  # MAP rises once norepinephrine runs
    lactate = course.hourly["lactate"]
    peak = lactate.argmax(axis=1)
    late = np.minimum(peak + 24, course.los_h.astype(int) - 1)
    responders = cohort.responder & (cohort.case == 1) & (late > peak + 12)
    assert np.mean(lactate[responders, late[responders]] < lactate[responders, peak[responders]]) > 0.9


def test_formats_bad_input_and_atomic_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_synthetic_icu(tmp_path / "pq", 10, 0, False)
    manifest = write_synthetic_icu(tmp_path / "pq", 20, 0, False, file_format="parquet")
    assert not list((tmp_path / "pq").rglob("*.csv.gz"))  # no stale tables of another format
    chart = pd.read_parquet(tmp_path / "pq" / "icu" / "chartevents.parquet")
    assert list(chart.columns) == OFFICIAL["icu/chartevents"].split()
    assert len(chart) == manifest.extra["rows"]["chartevents"]
    with pytest.raises(BadInputError):
        write_synthetic_icu(tmp_path / "x", 0, 0, False)
    with pytest.raises(BadInputError):
        write_synthetic_icu(tmp_path / "x", 5, 0, False, file_format="xlsx")

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(synth, "generate_chunk", explode)
    with pytest.raises(RuntimeError):
        write_synthetic_icu(tmp_path / "crash", 20, 0, False)
    left = [p.name for p in (tmp_path / "crash").rglob("*") if p.is_file()]
    assert MANIFEST_NAME not in left and "chartevents.csv.gz" not in left


def test_cli_writes_tables_and_rejects_bad_format(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["-q", "synth", "icu", "--stays", "12", "--seed", "2", "--out",
                                 str(tmp_path / "raw"), "--set", "dirt_rate=0"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "raw" / MANIFEST_NAME).read_text())
    assert manifest["config"]["dirt_rate"] == 0 and manifest["extra"]["rows"]["icustays"] == 12
    bad = runner.invoke(app, ["synth", "icu", "--stays", "5", "--out", str(tmp_path / "b"),
                              "--format", "xlsx"])
    assert bad.exit_code == 2


def test_etl_recovers_the_planted_cohort(tmp_path: Path) -> None:
    pipelines = pytest.importorskip("dosewise.pipelines")
    from dosewise.data_schemas import load_config

    write_synthetic_icu(tmp_path / "raw", 200, 0, False)
    config = load_config("demo", pipelines.SepsisPipelineConfig,
                         ["output.pseudonymize_ids=false"], search=[pipelines.config_folder()])
    pipelines.run_sepsis_pipeline(config, tmp_path / "raw", tmp_path / "out", show_progress=False)
    cohort = pd.read_parquet(tmp_path / "out" / "cohort.parquet")
    truth = pd.read_csv(tmp_path / "raw" / "truth" / "stays.csv.gz")
    eligible = truth[~truth["is_minor"] & ~truth["is_readmission"]]
    found = eligible["stay_id"].isin(set(cohort["stay_id"]))
    recall = (found & eligible["planted_sepsis"]).sum() / eligible["planted_sepsis"].sum()
    precision = (found & eligible["planted_sepsis"]).sum() / found.sum()
    assert recall > 0.9 and precision > 0.9, (recall, precision)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_memory_is_bounded_as_stays_grow(tmp_path: Path) -> None:
    # VmHWM is this process image's own peak; ru_maxrss would include the forking pytest parent.
    script = (
        "import re, sys\n"
        "from dosewise.pipelines import write_synthetic_icu, SyntheticIcuConfig\n"
        "def kib(key):\n"
        "    return int(re.search(key + r':\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "base = kib('VmRSS')\n"
        "write_synthetic_icu(sys.argv[1], int(sys.argv[2]), 0, False,\n"
        "                    config=SyntheticIcuConfig(chunk_stays=500))\n"
        "print((kib('VmHWM') - base) / 1024)\n"
    )
    growth = {}
    for stays in (1000, 5000):
        out = subprocess.run([sys.executable, "-c", script, str(tmp_path / str(stays)), str(stays)],
                             capture_output=True, text=True, check=True)
        growth[stays] = float(out.stdout.strip().splitlines()[-1])
    assert growth[5000] < 400, growth  # MiB above the imports, for ~2.5 M chartevents rows
    assert growth[5000] < 1.3 * growth[1000] + 30, growth  # flat in the number of stays
