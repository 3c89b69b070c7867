"""Tiny hand-written MIMIC-IV-shaped folders (official file names and column names) for ETL tests."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

from dosewise.data_schemas.raw_mimic import MIMIC_IV_TABLES

Rows = list[dict[str, Any]]

DAY = "2150-01-01"


def _t(hhmm: str, day: str = DAY) -> str:
    return f"{day} {hhmm}:00"


def septic_stay_tables(stay_id: int = 1, subject_id: int = 1, hadm_id: int = 1) -> dict[str, Rows]:
    """One adult stay with a culture (10:00) then vancomycin (12:00) and SOFA >= 2: Sepsis-3 at 10:00."""
    ids = {"subject_id": subject_id, "hadm_id": hadm_id}
    sid = {**ids, "stay_id": stay_id}
    chart: Rows = []
    for h in range(8, 24):
        t = _t(f"{h:02d}:05")
        chart += [
            {**sid, "charttime": t, "itemid": 220045, "value": "95", "valuenum": 95, "valueuom": "bpm"},
            {**sid, "charttime": t, "itemid": 220052, "value": "60", "valuenum": 60, "valueuom": "mmHg"},
            {**sid, "charttime": t, "itemid": 220179, "value": "100", "valuenum": 100, "valueuom": "mmHg"},
        ]
    chart += [
        {
            **sid,
            "charttime": _t("09:00"),
            "itemid": 223761,
            "value": "101.3",
            "valuenum": 101.3,
            "valueuom": "°F",
        },
        {
            **sid,
            "charttime": _t("09:00"),
            "itemid": 226531,
            "value": "176.37",
            "valuenum": 176.37,
            "valueuom": "lbs",
        },
        {**sid, "charttime": _t("09:00"), "itemid": 223835, "value": "50", "valuenum": 50, "valueuom": "%"},
        {**sid, "charttime": _t("09:00"), "itemid": 220739, "value": "3", "valuenum": 3, "valueuom": ""},
        {**sid, "charttime": _t("09:00"), "itemid": 223900, "value": "4", "valuenum": 4, "valueuom": ""},
        {**sid, "charttime": _t("09:00"), "itemid": 223901, "value": "5", "valuenum": 5, "valueuom": ""},
    ]
    return {
        "icustays": [
            {**sid, "intime": _t("08:00"), "outtime": _t("08:00", "2150-01-04"), "first_careunit": "MICU"}
        ],
        "patients": [
            {"subject_id": subject_id, "gender": "M", "anchor_age": 60, "anchor_year": 2150, "dod": ""}
        ],
        "admissions": [
            {
                **ids,
                "admittime": _t("00:00"),
                "dischtime": _t("00:00", "2150-01-10"),
                "deathtime": "",
                "hospital_expire_flag": 0,
            }
        ],
        "chartevents": chart,
        "labevents": [
            {
                **ids,
                "itemid": 50912,
                "charttime": _t("09:30"),
                "value": "2.5",
                "valuenum": 2.5,
                "valueuom": "mg/dL",
            },
            {
                **ids,
                "itemid": 51265,
                "charttime": _t("09:30"),
                "value": "90",
                "valuenum": 90,
                "valueuom": "K/uL",
            },
            {
                **ids,
                "itemid": 50813,
                "charttime": _t("09:30"),
                "value": "3",
                "valuenum": 3,
                "valueuom": "mmol/L",
            },
        ],
        "inputevents": [
            {
                **sid,
                "starttime": _t("10:00"),
                "endtime": _t("14:00"),
                "itemid": 225158,
                "amount": 1000,
                "amountuom": "mL",
                "rate": 250,
                "rateuom": "mL/hour",
                "patientweight": 80,
                "statusdescription": "FinishedRunning",
            },
            {
                **sid,
                "starttime": _t("12:00"),
                "endtime": _t("20:00"),
                "itemid": 221906,
                "amount": 3.84,
                "amountuom": "mg",
                "rate": 0.1,
                "rateuom": "mcg/kg/min",
                "patientweight": 80,
                "statusdescription": "FinishedRunning",
            },
            {
                **sid,
                "starttime": _t("12:00"),
                "endtime": _t("20:00"),
                "itemid": 221749,
                "amount": 48,
                "amountuom": "mg",
                "rate": 100,
                "rateuom": "mcg/min",
                "patientweight": 80,
                "statusdescription": "FinishedRunning",
            },
            {
                **sid,
                "starttime": _t("12:00"),
                "endtime": _t("20:00"),
                "itemid": 222315,
                "amount": 19.2,
                "amountuom": "units",
                "rate": 2.4,
                "rateuom": "units/hour",
                "patientweight": 80,
                "statusdescription": "FinishedRunning",
            },
        ],
        "outputevents": [
            {**sid, "charttime": _t(f"{h:02d}:30"), "itemid": 226559, "value": 100, "valueuom": "mL"}
            for h in range(9, 23)
        ],
        "microbiologyevents": [
            {**ids, "chartdate": _t("00:00"), "charttime": _t("10:00"), "spec_type_desc": "BLOOD CULTURE"}
        ],
        "prescriptions": [
            {
                **ids,
                "starttime": _t("12:00"),
                "stoptime": _t("12:00", "2150-01-03"),
                "drug": "Vancomycin",
                "route": "IV",
            }
        ],
    }


def write_mimic4(folder: Path, tables: dict[str, Rows]) -> Path:
    """Write `tables` as MIMIC-IV hosp/ and icu/ csv.gz files with the official required columns first."""
    for name, rows in tables.items():
        spec = MIMIC_IV_TABLES[name]
        columns = list(spec.columns)
        for row in rows:
            columns += [k for k in row if k not in columns]
        path = Path(folder) / spec.module / f"{name}.csv.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, quoting=csv.QUOTE_MINIMAL)
            writer.writeheader()
            writer.writerows(rows)
    return Path(folder)


def merge_tables(*parts: dict[str, Rows]) -> dict[str, Rows]:
    """Concatenate the rows of several table dicts (several stays in one folder)."""
    out: dict[str, Rows] = {}
    for part in parts:
        for name, rows in part.items():
            out.setdefault(name, []).extend(rows)
    return out
