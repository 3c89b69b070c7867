"""Boundary schemas of the raw MIMIC-III and MIMIC-IV tables the sepsis ETL reads.

Each `RawTable` names the file stem, the columns the ETL needs with their DuckDB types (every
other column is read as text), and what the table is needed for, so a missing table or column
produces an error that says why it matters. Column names follow the official documentation:
MIMIC-IV v2.2+ (`hosp/`, `icu/` modules, here) and MIMIC-III v1.4 (flat upper-case files, in
`raw_mimic_iii`); `raw_tables` picks one.
"""

from __future__ import annotations

from .raw_mimic_iii import MIMIC_III_TABLES
from .raw_mimic_types import ID, NUM, TS, TXT, MimicVersion, RawTable

__all__ = ["MIMIC_III_TABLES", "MIMIC_IV_TABLES", "MimicVersion", "RawTable", "raw_tables"]


def _iv(name: str, module: str, columns: dict[str, str], purpose: str, required: bool = True) -> RawTable:
    return RawTable(name=name, stem=name, module=module, columns=columns, purpose=purpose, required=required)


MIMIC_IV_TABLES: dict[str, RawTable] = {
    t.name: t
    for t in (
        _iv(
            "icustays",
            "icu",
            {
                "subject_id": ID,
                "hadm_id": ID,
                "stay_id": ID,
                "intime": TS,
                "outtime": TS,
                "first_careunit": TXT,
            },
            "the ICU stays that become episodes",
        ),
        _iv(
            "patients",
            "hosp",
            {"subject_id": ID, "gender": TXT, "anchor_age": NUM, "anchor_year": NUM, "dod": TS},
            "age, sex and date of death (90-day mortality)",
        ),
        _iv(
            "admissions",
            "hosp",
            {
                "subject_id": ID,
                "hadm_id": ID,
                "admittime": TS,
                "dischtime": TS,
                "deathtime": TS,
                "hospital_expire_flag": NUM,
            },
            "in-hospital mortality and admission times",
        ),
        _iv(
            "chartevents",
            "icu",
            {
                "subject_id": ID,
                "hadm_id": ID,
                "stay_id": ID,
                "charttime": TS,
                "itemid": ID,
                "value": TXT,
                "valuenum": NUM,
                "valueuom": TXT,
                "warning": NUM,
            },
            "vital signs, GCS, FiO2, ventilation and weight (`warning`: flag checked against its "
            "documented values)",
        ),
        _iv(
            "labevents",
            "hosp",
            {
                "subject_id": ID,
                "hadm_id": ID,
                "itemid": ID,
                "charttime": TS,
                "value": TXT,
                "valuenum": NUM,
                "valueuom": TXT,
            },
            "laboratory values (SOFA, lactate and the lab state variables)",
        ),
        _iv(
            "inputevents",
            "icu",
            {
                "subject_id": ID,
                "hadm_id": ID,
                "stay_id": ID,
                "starttime": TS,
                "endtime": TS,
                "itemid": ID,
                "amount": NUM,
                "amountuom": TXT,
                "rate": NUM,
                "rateuom": TXT,
                "patientweight": NUM,
                "statusdescription": TXT,
            },
            "IV fluid volumes and vasopressor rates (the actions)",
        ),
        _iv(
            "outputevents",
            "icu",
            {
                "subject_id": ID,
                "hadm_id": ID,
                "stay_id": ID,
                "charttime": TS,
                "itemid": ID,
                "value": NUM,
                "valueuom": TXT,
            },
            "urine output (renal SOFA and fluid balance)",
        ),
        _iv(
            "microbiologyevents",
            "hosp",
            {"subject_id": ID, "hadm_id": ID, "chartdate": TS, "charttime": TS, "spec_type_desc": TXT},
            "cultures for the suspicion of infection",
        ),
        _iv(
            "prescriptions",
            "hosp",
            {
                "subject_id": ID,
                "hadm_id": ID,
                "starttime": TS,
                "stoptime": TS,
                "drug": TXT,
                "route": TXT,
            },
            "antibiotics for the suspicion of infection",
        ),
    )
}

def raw_tables(version: MimicVersion) -> dict[str, RawTable]:
    """The raw tables the ETL reads for one MIMIC version, by view name."""
    return MIMIC_IV_TABLES if version == "mimic_iv" else MIMIC_III_TABLES
