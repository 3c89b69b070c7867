"""Boundary schema of the flat cycle-level registry (after its column-mapping config is applied).

One row per patient per cycle. Drug doses are wide: for each drug `D` of the regimen,
`planned_dose_mg_per_m2__D` (the protocol dose) and `delivered_dose_mg__D` (what was given, mg).
Counts carry their unit per row (`anc_unit`, `platelets_unit`; the cited table
`pipelines/rules/chemo_units.csv` converts them); the other labs have their unit in the name.
Patient-level fields (birth date, sex, ECOG, progression, death, last follow-up) repeat per row.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

PLANNED_PREFIX = "planned_dose_mg_per_m2__"
DELIVERED_PREFIX = "delivered_dose_mg__"
GRADE_COLUMNS = (
    "grade_neutropenia",
    "grade_febrile_neutropenia",
    "grade_thrombocytopenia",
    "grade_neuropathy",
    "grade_diarrhoea",
    "grade_mucositis",
    "grade_fatigue",
)
DATE_COLUMNS = ("cycle_start_date", "birth_date", "progression_date", "death_date", "last_followup_date")
REQUIRED_COLUMNS = ("patient_id", "regimen", "cycle_number", "cycle_start_date", "sex", "birth_date")
OPTIONAL_NUMERIC = (
    "bsa_m2",
    "height_cm",
    "weight_kg",
    "anc",
    "anc_nadir",
    "platelets",
    "haemoglobin_g_per_l",
    "creatinine_umol_per_l",
    "bilirubin_umol_per_l",
    "tumour_size_mm",
    "ecog",
)
OPTIONAL_TEXT = ("anc_unit", "platelets_unit")


def _num(*checks: pa.Check) -> pa.Column:
    return pa.Column(float, list(checks), nullable=True, coerce=True, required=False)


RegistrySchema = pa.DataFrameSchema(
    {
        "patient_id": pa.Column(str, nullable=False, coerce=True),
        "regimen": pa.Column(str, nullable=False, coerce=True),
        "cycle_number": pa.Column("int64", pa.Check.ge(1), nullable=False, coerce=True),
        "cycle_start_date": pa.Column("datetime64[ns]", nullable=False, coerce=True),
        "birth_date": pa.Column("datetime64[ns]", nullable=False, coerce=True),
        "sex": pa.Column(str, pa.Check.isin(["M", "F"]), nullable=False, coerce=True),
        "progression_date": pa.Column("datetime64[ns]", nullable=True, coerce=True, required=False),
        "death_date": pa.Column("datetime64[ns]", nullable=True, coerce=True, required=False),
        "last_followup_date": pa.Column("datetime64[ns]", nullable=True, coerce=True, required=False),
        **{g: _num(pa.Check.in_range(0, 5)) for g in GRADE_COLUMNS},
        "bsa_m2": _num(pa.Check.in_range(0.5, 3.5)),
        "height_cm": _num(pa.Check.in_range(80, 250)),
        "weight_kg": _num(pa.Check.in_range(20, 300)),
        "anc": _num(pa.Check.ge(0)),
        "anc_nadir": _num(pa.Check.ge(0)),
        "platelets": _num(pa.Check.ge(0)),
        "haemoglobin_g_per_l": _num(pa.Check.in_range(20, 250)),
        "creatinine_umol_per_l": _num(pa.Check.in_range(5, 3000)),
        "bilirubin_umol_per_l": _num(pa.Check.in_range(0, 1000)),
        "tumour_size_mm": _num(pa.Check.ge(0)),
        "ecog": _num(pa.Check.in_range(0, 4)),
        "anc_unit": pa.Column(str, nullable=True, coerce=True, required=False),
        "platelets_unit": pa.Column(str, nullable=True, coerce=True, required=False),
        PLANNED_PREFIX + ".+": pa.Column(float, nullable=True, coerce=True, regex=True, required=False),
        DELIVERED_PREFIX + ".+": pa.Column(float, nullable=True, coerce=True, regex=True, required=False),
    },
    strict=False,
    name="RegistrySchema",
)


def drug_columns(frame: pd.DataFrame) -> list[str]:
    """Drugs with both a planned and a delivered column, in column order."""
    planned = [c.removeprefix(PLANNED_PREFIX) for c in frame.columns if c.startswith(PLANNED_PREFIX)]
    return [d for d in planned if DELIVERED_PREFIX + d in frame.columns]
