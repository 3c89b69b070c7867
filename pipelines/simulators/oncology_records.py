"""Simulated cohort -> the records a data team holds, with planted dirt and a truth/ folder.

The clean cycles from `simulate_cohort` become calendar-dated records (first cycles spread over
2016-2019), then the same dirt is planted for every output format, so the registry and the
OMOP folder describe exactly the same patients and the same mistakes:
- missing labs (ANC, creatinine, tumour size at some cycle starts),
- ANC and platelets of some patients in cells/uL instead of 1e9/L,
- BSA left blank (height and weight present: the ETL derives it by Mosteller),
- exact duplicate rows, and rows entered late (at the end of the file).
`truth/` holds what was planted, the true patient parameters and outcomes, and the behaviour
policy's option probabilities for every logged cycle (its known propensities).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .oncology_sim import SimulatedCohort

_START = np.datetime64("2016-01-01")
DIRT_RATES = {
    "missing_anc": 0.03,
    "missing_creatinine": 0.03,
    "missing_tumour_size": 0.05,
    "anc_cells_per_ul_patients": 0.15,
    "bsa_blank": 0.05,
    "duplicate_row": 0.01,
    "late_entry": 0.02,
}


@dataclass
class Records:
    """Dated records of one simulated cohort (dirt planted), ready for any writer."""

    cycles: pd.DataFrame  # one row per patient per cycle (duplicates and late rows included)
    patients: pd.DataFrame  # one row per patient
    planted: pd.DataFrame  # patient_id, cycle_number, dirt
    behaviour: pd.DataFrame  # patient_id, cycle_number, option probabilities


def _dates(first: np.ndarray, days: pd.Series) -> np.ndarray:
    out = first + pd.to_timedelta(days.fillna(-1), unit="D").to_numpy().astype("timedelta64[D]")
    return np.where(days.notna().to_numpy(), out, np.datetime64("NaT"))


def dated_records(cohort: SimulatedCohort, seed: int) -> Records:
    """Calendar dates, units as recorded, planted dirt (see module doc), seeded separately."""
    rng = np.random.default_rng([seed, 104729])
    pts = cohort.patients.copy()
    n = len(pts)
    first = _START + rng.integers(0, 4 * 365, n).astype("timedelta64[D]")
    pts["first_cycle_date"] = first
    pts["birth_date"] = first - np.round(pts["age_years"].to_numpy() * 365.25).astype("timedelta64[D]")
    for col in ("death", "progression", "last_followup"):
        pts[f"{col}_date"] = _dates(first, pts[f"{col}_day"])
    cyc = cohort.cycles.copy()
    pos = cyc["patient_id"].to_numpy() - 1
    cyc["cycle_start_date"] = _dates(first[pos], cyc["cycle_start_day"])
    cyc["anc_unit"] = "10^9/L"
    cyc["platelets_unit"] = "10^9/L"
    planted: list[pd.DataFrame] = []

    def plant(mask: np.ndarray, dirt: str) -> None:
        planted.append(
            pd.DataFrame(
                {
                    "patient_id": cyc.loc[mask, "patient_id"].to_numpy(),
                    "cycle_number": cyc.loc[mask, "cycle_number"].to_numpy(),
                    "dirt": dirt,
                }
            )
        )

    m = len(cyc)
    for col, key in (
        ("anc_1e9_per_l", "missing_anc"),
        ("creatinine_umol_per_l", "missing_creatinine"),
        ("tumour_size_mm", "missing_tumour_size"),
    ):
        mask = (rng.random(m) < DIRT_RATES[key]) & (cyc["cycle_number"].to_numpy() > 1)
        cyc.loc[mask, col] = np.nan
        plant(mask, key)
    cells = rng.random(n) < DIRT_RATES["anc_cells_per_ul_patients"]
    mask = cells[pos]
    for col, unit in (
        ("anc_1e9_per_l", "anc_unit"),
        ("anc_nadir_1e9_per_l", "anc_unit"),
        ("platelets_1e9_per_l", "platelets_unit"),
    ):
        cyc.loc[mask, col] = np.round(cyc.loc[mask, col] * 1000.0)
        cyc.loc[mask, unit] = "cells/uL"
    plant(mask, "cells_per_ul")
    mask = rng.random(m) < DIRT_RATES["bsa_blank"]
    cyc["bsa_recorded_m2"] = cyc["bsa_m2"].where(~mask)
    plant(mask, "bsa_blank_derive_mosteller")
    dup = rng.random(m) < DIRT_RATES["duplicate_row"]
    plant(dup, "duplicate_row")
    late = rng.random(m) < DIRT_RATES["late_entry"]
    plant(late, "late_entry")
    order = np.concatenate([np.flatnonzero(~late), np.flatnonzero(dup), np.flatnonzero(late)])
    cyc = cyc.iloc[order].reset_index(drop=True)
    option_cols = [col for col in cohort.cycles.columns if col.startswith("p_option_")]
    behaviour = (
        cohort.cycles[["patient_id", "cycle_number", "behaviour_option", *option_cols]]
        if option_cols
        else pd.DataFrame(columns=["patient_id", "cycle_number"])
    )
    planted_frame = pd.concat(planted, ignore_index=True) if planted else pd.DataFrame()
    return Records(cyc, pts, planted_frame, behaviour.reset_index(drop=True))


REGISTRY_COLUMNS = {
    "patient_id": "patient_id",
    "regimen": "regimen",
    "cycle_number": "cycle_number",
    "cycle_start_date": "cycle_start_date",
    "planned_dose_mg_per_m2": "planned_dose_mg_per_m2__docetaxel",
    "delivered_dose_mg": "delivered_dose_mg__docetaxel",
    "bsa_recorded_m2": "bsa_m2",
    "height_cm": "height_cm",
    "weight_kg": "weight_kg",
    "anc_1e9_per_l": "anc",
    "anc_unit": "anc_unit",
    "anc_nadir_1e9_per_l": "anc_nadir",
    "platelets_1e9_per_l": "platelets",
    "platelets_unit": "platelets_unit",
    "haemoglobin_g_per_l": "haemoglobin_g_per_l",
    "creatinine_umol_per_l": "creatinine_umol_per_l",
    "bilirubin_umol_per_l": "bilirubin_umol_per_l",
    "tumour_size_mm": "tumour_size_mm",
    "grade_neutropenia": "grade_neutropenia",
    "grade_febrile_neutropenia": "grade_febrile_neutropenia",
    "grade_thrombocytopenia": "grade_thrombocytopenia",
    "grade_neuropathy": "grade_neuropathy",
    "grade_diarrhoea": "grade_diarrhoea",
    "grade_mucositis": "grade_mucositis",
    "grade_fatigue": "grade_fatigue",
}
PATIENT_COLUMNS = ("birth_date", "sex", "ecog", "progression_date", "death_date", "last_followup_date")


def registry_table(records: Records) -> pd.DataFrame:
    """The flat cycle-level registry: one row per patient per cycle, patient fields repeated."""
    pts = records.patients.drop(columns=["weight_kg"])
    cyc = records.cycles.merge(pts, on="patient_id", how="left", validate="many_to_one")
    out = pd.DataFrame({new: cyc[old] for old, new in REGISTRY_COLUMNS.items()})
    out["sex"] = np.where(cyc["sex_male"].to_numpy() == 1, "M", "F")
    for col in ("birth_date", "ecog", "progression_date", "death_date", "last_followup_date"):
        out[col] = cyc[col].to_numpy()
    for col in [c for c in out.columns if c.endswith("_date")]:
        out[col] = pd.to_datetime(out[col]).dt.strftime("%Y-%m-%d")
    for col in [c for c in out.columns if c.startswith("grade_")] + ["ecog", "cycle_number"]:
        out[col] = out[col].astype("int64")
    return out
