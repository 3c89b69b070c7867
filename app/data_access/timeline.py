"""One stay's treatment timeline: doses given beside recommended, in units where the data has them.

When the dataset and the policy both carry doses in units (`fluid_ml_4h`, `norepi_eq_mcg_kg_min`)
those are compared; otherwise the 5x5 grid's bins are (action = fluid_bin * 5 + vaso_bin).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dosewise.data_schemas import columns as c

from .datasets import Dataset, action_bins

DOSE_LABELS = {
    c.FLUID_ML_4H: "IV fluid, mL/4h",
    c.NOREPI_EQ_MCG_KG_MIN: "Vasopressor, norepinephrine-eq mcg/kg/min",
}
#: Names of vitals, labs and scores shown first on a stay's timeline when the dataset has them.
PREFERRED_STATE_COLUMNS = (
    "map_mmhg", "heart_rate_bpm", "sofa_24h", "sofa", "lactate_mmol_l", "spo2_pct", "creatinine_mg_dl",
)


def default_timeline_columns(dataset: Dataset, limit: int = 4) -> list[str]:
    """Vitals/labs/SOFA columns to show first: known clinical names, else the first state columns."""
    states = list(dataset.info.state_columns)
    preferred = [name for name in PREFERRED_STATE_COLUMNS if name in states]
    return (preferred or states)[:limit]


def dose_frame(
    dataset: Dataset, stay: pd.DataFrame, recommendations: pd.DataFrame | None,
    flags: pd.DataFrame | None,
) -> tuple[pd.DataFrame, bool]:
    """Long frame (bin_start, dose, given, recommended, out_of_support); True when in units."""
    bins = stay[[c.EPISODE_ID, c.STEP, c.BIN_START, c.ACTION]].copy()
    if recommendations is not None:
        bins = bins.merge(recommendations, on=c.STEP, how="left")
    else:
        bins["recommended"] = np.nan
    bins["out_of_support"] = False
    if flags is not None and len(flags):
        merged = bins[[c.EPISODE_ID, c.STEP]].merge(flags, on=[c.EPISODE_ID, c.STEP], how="left")
        bins["out_of_support"] = merged["out_of_support"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    dose_columns = [name for name in DOSE_LABELS if name in stay.columns]
    in_units = bool(dose_columns) and all(f"recommended_{n}" in bins.columns for n in dose_columns)
    parts = []
    if in_units:
        for name in dose_columns:
            parts.append(pd.DataFrame({
                c.BIN_START: bins[c.BIN_START], c.STEP: bins[c.STEP], "dose": DOSE_LABELS[name],
                "given": stay[name].to_numpy(dtype=float), "recommended": bins[f"recommended_{name}"],
                "out_of_support": bins["out_of_support"],
            }))
    elif dataset.grid is not None:
        given_f, given_v = action_bins(bins[c.ACTION].to_numpy(), dataset.grid)
        has_rec = bins["recommended"].notna().to_numpy()
        rec = bins["recommended"].fillna(0).to_numpy(dtype=np.int64)
        rec_f, rec_v = action_bins(rec, dataset.grid)
        for label, given, recommended in (
            (f"IV fluid, bin 0-{dataset.grid[0] - 1}", given_f, rec_f),
            (f"Vasopressor, bin 0-{dataset.grid[1] - 1}", given_v, rec_v),
        ):
            parts.append(pd.DataFrame({
                c.BIN_START: bins[c.BIN_START], c.STEP: bins[c.STEP], "dose": label,
                "given": given.astype(float), "recommended": np.where(has_rec, recommended, np.nan),
                "out_of_support": bins["out_of_support"],
            }))
    else:
        parts.append(pd.DataFrame({
            c.BIN_START: bins[c.BIN_START], c.STEP: bins[c.STEP], "dose": "action index",
            "given": bins[c.ACTION].astype(float), "recommended": bins["recommended"].astype(float),
            "out_of_support": bins["out_of_support"],
        }))
    return pd.concat(parts, ignore_index=True), in_units


def bin_summary(doses: pd.DataFrame, step: int) -> pd.DataFrame:
    """Given vs recommended for one bin, one row per dose."""
    rows = doses[doses[c.STEP] == step]
    table = rows[["dose", "given", "recommended", "out_of_support"]].reset_index(drop=True)
    return table.rename(columns={"out_of_support": "out of support"})
