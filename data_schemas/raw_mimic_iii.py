"""Boundary schemas of the raw MIMIC-III v1.4 tables (flat upper-case files) the sepsis ETL reads;
see `raw_mimic` for what each entry says."""

from __future__ import annotations

from .raw_mimic_types import ID, NUM, TS, TXT, RawTable


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


MIMIC_III_TABLES: dict[str, RawTable] = {
    t.name: t
    for t in (
        _iii(
            "icustays",
            {
                "subject_id": ID,
                "hadm_id": ID,
                "icustay_id": ID,
                "dbsource": TXT,
                "intime": TS,
                "outtime": TS,
                "first_careunit": TXT,
            },
            "the ICU stays that become episodes",
        ),
        _iii(
            "patients",
            {"subject_id": ID, "gender": TXT, "dob": TS, "dod": TS},
            "age, sex and date of death (90-day mortality)",
        ),
        _iii(
            "admissions",
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
        _iii(
            "chartevents",
            {
                "subject_id": ID,
                "hadm_id": ID,
                "icustay_id": ID,
                "itemid": ID,
                "charttime": TS,
                "value": TXT,
                "valuenum": NUM,
                "valueuom": TXT,
                "error": NUM,
            },
            "vital signs, GCS, FiO2, ventilation and weight",
        ),
        _iii(
            "labevents",
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
        _iii(
            "inputevents_cv",
            {
                "subject_id": ID,
                "hadm_id": ID,
                "icustay_id": ID,
                "charttime": TS,
                "itemid": ID,
                "amount": NUM,
                "amountuom": TXT,
                "rate": NUM,
                "rateuom": TXT,
                "stopped": TXT,
            },
            "IV fluids and vasopressors of CareVue stays (`stopped` ends an infusion)",
            required=False,
            alternatives=("inputevents_mv",),
        ),
        _iii(
            "inputevents_mv",
            {
                "subject_id": ID,
                "hadm_id": ID,
                "icustay_id": ID,
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
            "IV fluids and vasopressors of MetaVision stays",
            required=False,
            alternatives=("inputevents_cv",),
        ),
        _iii(
            "outputevents",
            {
                "subject_id": ID,
                "hadm_id": ID,
                "icustay_id": ID,
                "charttime": TS,
                "itemid": ID,
                "value": NUM,
                "valueuom": TXT,
                "iserror": NUM,
            },
            "urine output (renal SOFA and fluid balance)",
        ),
        _iii(
            "microbiologyevents",
            {"subject_id": ID, "hadm_id": ID, "chartdate": TS, "charttime": TS, "spec_type_desc": TXT},
            "cultures for the suspicion of infection",
        ),
        _iii(
            "prescriptions",
            {
                "subject_id": ID,
                "hadm_id": ID,
                "startdate": TS,
                "enddate": TS,
                "drug": TXT,
                "route": TXT,
            },
            "antibiotics for the suspicion of infection",
        ),
    )
}
