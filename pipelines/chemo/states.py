"""Cycle-level states, shared by the ETL and the simulator's policy interface.

Input is the canonical cycles table (one row per patient per cycle, whichever format it came
from, see `CYCLE_COLUMNS`); the state of cycle k is what the clinician knew at its scheduled
start: that day's counts and chemistry, the previous cycle's toxicity grades and measured nadir,
tumour burden and its change from baseline, the cumulative dose before this cycle, body size and
the patient's covariates. The simulator calls the same function, so a policy sees the same
columns in simulation as in the trajectories it was trained on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import TOXICITY_CATEGORIES

#: Columns of the canonical cycles table (units in the names).
CYCLE_COLUMNS = (
    "patient_id",
    "regimen",
    "cycle_number",
    "cycle_start_date",
    "planned_interval_days",
    "planned_dose_mg_per_m2",
    "dose_mg_per_m2",
    "dose_fraction",
    "anc_1e9_per_l",
    "platelets_1e9_per_l",
    "haemoglobin_g_per_l",
    "creatinine_umol_per_l",
    "bilirubin_umol_per_l",
    "anc_nadir_1e9_per_l",
    "tumour_size_mm",
    "bsa_m2",
    *(f"grade_{cat}" for cat in TOXICITY_CATEGORIES),
)
LAB_COLUMNS = (
    "anc_1e9_per_l",
    "platelets_1e9_per_l",
    "haemoglobin_g_per_l",
    "creatinine_umol_per_l",
    "bilirubin_umol_per_l",
    "tumour_size_mm",
    "bsa_m2",
)
GRADE_COLUMNS = tuple(f"grade_{cat}" for cat in TOXICITY_CATEGORIES)
PREV_GRADE = {f"grade_{cat}": f"prev_grade_{cat}" for cat in TOXICITY_CATEGORIES}
PREV_GRADE["grade_febrile_neutropenia"] = "prev_febrile_neutropenia"

STATE_COLUMNS = [
    "cycle_number",
    "days_since_first_cycle",
    "anc_1e9_per_l",
    "platelets_1e9_per_l",
    "haemoglobin_g_per_l",
    "prev_nadir_anc_1e9_per_l",
    "prev_nadir_measured",
    *PREV_GRADE.values(),
    "creatinine_umol_per_l",
    "bilirubin_umol_per_l",
    "tumour_size_mm",
    "tumour_change_fraction",
    "cum_dose_mg_per_m2",
    "prev_dose_fraction",
    "bsa_m2",
    "age_years",
    "sex_male",
    "ecog",
]


def scheduled_days(cycles: pd.DataFrame) -> np.ndarray:
    """Days from the first cycle to each cycle's scheduled start (previous start + planned interval)."""
    first = cycles.groupby("patient_id", sort=False)["cycle_start_date"].transform("min")
    prev = cycles.groupby("patient_id", sort=False)["cycle_start_date"].shift(1)
    interval = pd.to_timedelta(cycles["planned_interval_days"], unit="D")
    scheduled = (prev + interval).where(prev.notna(), cycles["cycle_start_date"])
    return np.asarray((scheduled - first).dt.days.to_numpy(np.float64))


def cycle_states(
    cycles: pd.DataFrame, patients: pd.DataFrame, days: np.ndarray | None = None
) -> pd.DataFrame:
    """State columns (`STATE_COLUMNS`) for every row of `cycles`, sorted by patient and cycle.

    Lags come from the patient's previous cycle; the first cycle has no previous toxicity, a nadir
    flag of 0 and a previous dose fraction of 0. `days` overrides the days since the first cycle
    (the simulator knows the scheduled day before the dose date exists). `patients` holds
    `patient_id`, `age_years`, `sex_male` and `ecog`.
    """
    grouped = cycles.groupby("patient_id", sort=False)
    out = pd.DataFrame(index=cycles.index)
    out["cycle_number"] = cycles["cycle_number"].astype(np.float64)
    out["days_since_first_cycle"] = scheduled_days(cycles) if days is None else days
    for col in (
        "anc_1e9_per_l",
        "platelets_1e9_per_l",
        "haemoglobin_g_per_l",
        "creatinine_umol_per_l",
        "bilirubin_umol_per_l",
        "tumour_size_mm",
        "bsa_m2",
    ):
        out[col] = cycles[col].astype(np.float64)
    nadir = grouped["anc_nadir_1e9_per_l"].shift(1)
    prev_anc = grouped["anc_1e9_per_l"].shift(1)
    out["prev_nadir_measured"] = nadir.notna().astype(np.float64)
    out["prev_nadir_anc_1e9_per_l"] = nadir.fillna(prev_anc).fillna(cycles["anc_1e9_per_l"])
    for col, prev_col in PREV_GRADE.items():
        out[prev_col] = grouped[col].shift(1).fillna(0.0).astype(np.float64)
    baseline = grouped["tumour_size_mm"].transform("first")
    out["tumour_change_fraction"] = (cycles["tumour_size_mm"] / baseline - 1.0).fillna(0.0)
    dose = cycles["dose_mg_per_m2"].fillna(0.0)
    out["cum_dose_mg_per_m2"] = (dose.groupby(cycles["patient_id"], sort=False).cumsum() - dose).astype(float)
    out["prev_dose_fraction"] = grouped["dose_fraction"].shift(1).fillna(0.0).astype(np.float64)
    covariates = patients.set_index("patient_id")[["age_years", "sex_male", "ecog"]]
    joined = covariates.reindex(cycles["patient_id"].to_numpy())
    for col in ("age_years", "sex_male", "ecog"):
        out[col] = joined[col].to_numpy(np.float64)
    return out[STATE_COLUMNS]
