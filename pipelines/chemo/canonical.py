"""Checked registry rows -> the canonical cycles and patients tables (units in the names).

The dose fraction of a cycle is the mean over the regimen's drugs of delivered / (planned per
m2 x BSA); the cumulative dose and `dose_mg_per_m2` follow the regimen's first (principal) drug
in rules/chemo_regimens.csv. Missing labs are carried forward within the patient (sample and
hold, as the sepsis ETL does), then filled with the median of all cycles; the counts go to the
manifest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dosewise.data_schemas.raw_registry import DELIVERED_PREFIX, GRADE_COLUMNS, PLANNED_PREFIX, drug_columns

from .cycles import regimen_table
from .states import CYCLE_COLUMNS, LAB_COLUMNS

RENAMES = {"anc": "anc_1e9_per_l", "platelets": "platelets_1e9_per_l", "anc_nadir": "anc_nadir_1e9_per_l"}


def canonical_cycles(frame: pd.DataFrame) -> pd.DataFrame:
    """Registry rows (rules applied, units converted) -> `states.CYCLE_COLUMNS`, sorted."""
    regimens = regimen_table()
    principal = regimens.drop_duplicates("regimen").set_index("regimen")
    drugs = drug_columns(frame)
    bsa = frame["bsa_m2"].to_numpy(np.float64)
    planned = frame[[PLANNED_PREFIX + d for d in drugs]].to_numpy(np.float64)
    delivered = frame[[DELIVERED_PREFIX + d for d in drugs]].to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where(planned > 0, delivered / (planned * bsa[:, None]), np.nan)
        fraction = np.nanmean(np.where(np.isnan(delivered) & (planned > 0), 0.0, ratios), axis=1)
    main = principal.reindex(frame["regimen"])["drug"].to_numpy()
    pick = np.array([drugs.index(d) if d in drugs else 0 for d in main], dtype=int)
    rows = np.arange(len(frame))
    out = frame.rename(columns=RENAMES).copy()
    out["dose_fraction"] = np.nan_to_num(fraction, nan=0.0)
    out["planned_dose_mg_per_m2"] = planned[rows, pick]
    out["dose_mg_per_m2"] = np.nan_to_num(delivered[rows, pick], nan=0.0) / bsa
    out["planned_interval_days"] = principal.reindex(frame["regimen"])["cycle_days"].to_numpy(np.float64)
    for col in CYCLE_COLUMNS:
        if col not in out:
            out[col] = np.nan
    for col in GRADE_COLUMNS:
        out[col] = out[col].fillna(0.0)
    keep = list(CYCLE_COLUMNS) + ["bsa_source"] * ("bsa_source" in out)
    return out[keep].sort_values(["patient_id", "cycle_number"], kind="stable").reset_index(drop=True)


HELD_PREFIX = "_held__"


def hold_labs(cycles: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Each lab carried forward within the patient, beside it as `_held__<lab>`; missing values per lab.

    The fill (`fill_labs`) takes the median of the held values of all cycles, so a run in patient
    batches holds each batch, takes the medians over all of them, then fills.
    """
    out = cycles.copy()
    missing: dict[str, int] = {}
    for col in LAB_COLUMNS:
        n = int(out[col].isna().sum())
        missing[col] = n
        out[HELD_PREFIX + col] = out.groupby("patient_id", sort=False)[col].ffill() if n else out[col]
    return out, missing


def lab_median(held: np.ndarray) -> float:
    """The median of held values as pandas takes it (NaN skipped; 0.0 when none is known)."""
    known = held[~np.isnan(held)]
    return float(np.median(known)) if len(known) else 0.0


def fill_labs(held: pd.DataFrame, missing: dict[str, int], medians: dict[str, float]) -> pd.DataFrame:
    """Labs missing anywhere (`missing` counts over all cycles) filled: held forward, then the median."""
    out = held.copy()
    for col in LAB_COLUMNS:
        if missing.get(col):
            out[col] = out[HELD_PREFIX + col].fillna(medians[col])
    return out.drop(columns=[HELD_PREFIX + col for col in LAB_COLUMNS])


def impute_labs(cycles: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Carry labs forward within each patient, then fill with the median of all cycles."""
    held, missing = hold_labs(cycles)
    medians = {col: lab_median(held[HELD_PREFIX + col].to_numpy(np.float64)) for col in LAB_COLUMNS}
    return fill_labs(held, missing, medians), {k: v for k, v in missing.items() if v}


def canonical_patients(frame: pd.DataFrame, cycles: pd.DataFrame) -> pd.DataFrame:
    """One row per patient: covariates at the first cycle and the outcome dates."""
    first = frame.sort_values(["patient_id", "cycle_number"], kind="stable").groupby("patient_id", sort=True)
    pts = first.first().reset_index()
    start = cycles.groupby("patient_id")["cycle_start_date"].min()
    pts = pts[pts["patient_id"].isin(start.index)].reset_index(drop=True)
    pts["first_cycle_date"] = start.reindex(pts["patient_id"]).to_numpy()
    age = (pts["first_cycle_date"] - pts["birth_date"]).dt.days / 365.25
    cols = {
        "patient_id": pts["patient_id"],
        "regimen": pts["regimen"],
        "age_years": np.round(age, 1),
        "sex_male": (pts["sex"] == "M").astype(float),
        "ecog": pts["ecog"].fillna(1.0) if "ecog" in pts else 1.0,
        "first_cycle_date": pts["first_cycle_date"],
    }
    for col in ("death_date", "progression_date", "last_followup_date"):
        cols[col] = pts.get(col, pd.NaT)
    return pd.DataFrame(cols)
