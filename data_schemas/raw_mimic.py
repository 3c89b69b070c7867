"""Boundary schemas of the raw MIMIC-III and MIMIC-IV tables the sepsis ETL reads.

Each `RawTable` names the file stem, the columns the ETL needs with their DuckDB types (every
other column is read as text), and what the table is needed for, so a missing table or column
produces an error that says why it matters. Column names follow the official documentation:
MIMIC-IV v2.2+ (`hosp/`, `icu/` modules) and MIMIC-III v1.4 (flat upper-case files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MimicVersion = Literal["mimic_iv", "mimic_iii"]

_ID = "BIGINT"
_TS = "TIMESTAMP"
_NUM = "DOUBLE"
_TXT = "VARCHAR"


@dataclass(frozen=True)
class RawTable:
    """One raw table: its view name, file stem, module folder, typed columns and purpose."""

    name: str
    stem: str
    module: str
    columns: dict[str, str]
    purpose: str
    required: bool = True
    alternatives: tuple[str, ...] = field(default_factory=tuple)


def _iv(name: str, module: str, columns: dict[str, str], purpose: str, required: bool = True) -> RawTable:
    return RawTable(name=name, stem=name, module=module, columns=columns, purpose=purpose, required=required)


def _iii(
    name: str,
    columns: dict[str, str],
    purpose: str,
    required: bool = True,
    alternatives: tuple[str, ...] = (),
) -> RawTable:
    return RawTable(
        name=name,
        stem=name.upper(),
        module="",
        columns=columns,
        purpose=purpose,
        required=required,
        alternatives=alternatives,
    )


MIMIC_IV_TABLES: dict[str, RawTable] = {
    t.name: t
    for t in (
        _iv(
            "icustays",
            "icu",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "stay_id": _ID,
                "intime": _TS,
                "outtime": _TS,
                "first_careunit": _TXT,
            },
            "the ICU stays that become episodes",
        ),
        _iv(
            "patients",
            "hosp",
            {"subject_id": _ID, "gender": _TXT, "anchor_age": _NUM, "anchor_year": _NUM, "dod": _TS},
            "age, sex and date of death (90-day mortality)",
        ),
        _iv(
            "admissions",
            "hosp",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "admittime": _TS,
                "dischtime": _TS,
                "deathtime": _TS,
                "hospital_expire_flag": _NUM,
            },
            "in-hospital mortality and admission times",
        ),
        _iv(
            "chartevents",
            "icu",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "stay_id": _ID,
                "charttime": _TS,
                "itemid": _ID,
                "value": _TXT,
                "valuenum": _NUM,
                "valueuom": _TXT,
            },
            "vital signs, GCS, FiO2, ventilation and weight",
        ),
        _iv(
            "labevents",
            "hosp",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "itemid": _ID,
                "charttime": _TS,
                "value": _TXT,
                "valuenum": _NUM,
                "valueuom": _TXT,
            },
            "laboratory values (SOFA, lactate and the lab state variables)",
        ),
        _iv(
            "inputevents",
            "icu",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "stay_id": _ID,
                "starttime": _TS,
                "endtime": _TS,
                "itemid": _ID,
                "amount": _NUM,
                "amountuom": _TXT,
                "rate": _NUM,
                "rateuom": _TXT,
                "patientweight": _NUM,
                "statusdescription": _TXT,
            },
            "IV fluid volumes and vasopressor rates (the actions)",
        ),
        _iv(
            "outputevents",
            "icu",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "stay_id": _ID,
                "charttime": _TS,
                "itemid": _ID,
                "value": _NUM,
                "valueuom": _TXT,
            },
            "urine output (renal SOFA and fluid balance)",
        ),
        _iv(
            "microbiologyevents",
            "hosp",
            {"subject_id": _ID, "hadm_id": _ID, "chartdate": _TS, "charttime": _TS, "spec_type_desc": _TXT},
            "cultures for the suspicion of infection",
        ),
        _iv(
            "prescriptions",
            "hosp",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "starttime": _TS,
                "stoptime": _TS,
                "drug": _TXT,
                "route": _TXT,
            },
            "antibiotics for the suspicion of infection",
        ),
    )
}

MIMIC_III_TABLES: dict[str, RawTable] = {
    t.name: t
    for t in (
        _iii(
            "icustays",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "icustay_id": _ID,
                "dbsource": _TXT,
                "intime": _TS,
                "outtime": _TS,
                "first_careunit": _TXT,
            },
            "the ICU stays that become episodes",
        ),
        _iii(
            "patients",
            {"subject_id": _ID, "gender": _TXT, "dob": _TS, "dod": _TS},
            "age, sex and date of death (90-day mortality)",
        ),
        _iii(
            "admissions",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "admittime": _TS,
                "dischtime": _TS,
                "deathtime": _TS,
                "hospital_expire_flag": _NUM,
            },
            "in-hospital mortality and admission times",
        ),
        _iii(
            "chartevents",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "icustay_id": _ID,
                "itemid": _ID,
                "charttime": _TS,
                "value": _TXT,
                "valuenum": _NUM,
                "valueuom": _TXT,
                "error": _NUM,
            },
            "vital signs, GCS, FiO2, ventilation and weight",
        ),
        _iii(
            "labevents",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "itemid": _ID,
                "charttime": _TS,
                "value": _TXT,
                "valuenum": _NUM,
                "valueuom": _TXT,
            },
            "laboratory values (SOFA, lactate and the lab state variables)",
        ),
        _iii(
            "inputevents_cv",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "icustay_id": _ID,
                "charttime": _TS,
                "itemid": _ID,
                "amount": _NUM,
                "amountuom": _TXT,
                "rate": _NUM,
                "rateuom": _TXT,
            },
            "IV fluids and vasopressors of CareVue stays",
            required=False,
            alternatives=("inputevents_mv",),
        ),
        _iii(
            "inputevents_mv",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "icustay_id": _ID,
                "starttime": _TS,
                "endtime": _TS,
                "itemid": _ID,
                "amount": _NUM,
                "amountuom": _TXT,
                "rate": _NUM,
                "rateuom": _TXT,
                "patientweight": _NUM,
                "statusdescription": _TXT,
            },
            "IV fluids and vasopressors of MetaVision stays",
            required=False,
            alternatives=("inputevents_cv",),
        ),
        _iii(
            "outputevents",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "icustay_id": _ID,
                "charttime": _TS,
                "itemid": _ID,
                "value": _NUM,
                "valueuom": _TXT,
                "iserror": _NUM,
            },
            "urine output (renal SOFA and fluid balance)",
        ),
        _iii(
            "microbiologyevents",
            {"subject_id": _ID, "hadm_id": _ID, "chartdate": _TS, "charttime": _TS, "spec_type_desc": _TXT},
            "cultures for the suspicion of infection",
        ),
        _iii(
            "prescriptions",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "startdate": _TS,
                "enddate": _TS,
                "drug": _TXT,
                "route": _TXT,
            },
            "antibiotics for the suspicion of infection",
        ),
    )
}


def raw_tables(version: MimicVersion) -> dict[str, RawTable]:
    """The raw tables the ETL reads for one MIMIC version, by view name."""
    return MIMIC_IV_TABLES if version == "mimic_iv" else MIMIC_III_TABLES
