"""The per-stay x bin state grid: measured variables, sample-and-hold, fill, derived scores.

State variables carry their units in their names; derived ones follow the AI Clinician
(Komorowski 2018): PaO2/FiO2, shock index, SIRS (Bone et al. 1992), SOFA, fluid balance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dosewise.data_schemas import columns as c

from ..cleaning.imputation import FILLED, fill_remaining, fill_values, hold_bins, sample_and_hold


def make_grid(cohort: pd.DataFrame, bin_hours: int) -> pd.DataFrame:
    """One row per cohort stay x bin (0..n_bins-1) with its start time."""
    n = cohort["n_bins"].to_numpy()
    stay = np.repeat(cohort["stay_id"].to_numpy(), n)
    step = np.concatenate([np.arange(k, dtype="int64") for k in n]) if len(n) else np.array([], "int64")
    start = np.repeat(cohort["window_start"].to_numpy(), n) + (step * bin_hours).astype("timedelta64[h]")
    return pd.DataFrame(
        {"stay_id": stay, "bin": step, c.BIN_START: pd.to_datetime(start).astype("datetime64[ns]")}
    )


def pivot_measurements(grid: pd.DataFrame, binned: pd.DataFrame, variables: list[str]) -> pd.DataFrame:
    """Put the wide (stay, bin, one column per variable) aggregates onto the full grid."""
    out = grid.merge(
        binned[["stay_id", "bin", *variables]], on=["stay_id", "bin"], how="left", validate="one_to_one"
    )
    for v in variables:
        out[v] = out[v].astype("float64")
    return out


def hold_states(grid: pd.DataFrame, hold: pd.DataFrame, bin_hours: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sample-and-hold of every held variable within each stay (grid sorted by stay, bin): (held, mask)."""
    variables = hold["variable"].tolist()
    limits = hold_bins(dict(zip(variables, hold["hold_hours"], strict=True)), bin_hours)
    return sample_and_hold(grid, variables, limits, group="stay_id")


def fill_rules(hold: pd.DataFrame) -> tuple[dict[str, float], frozenset[str]]:
    """Each held variable's fill default, and the variables that always take it (indicators)."""
    defaults = dict(zip(hold["variable"], hold["fill_default"].astype(float), strict=True))
    always = frozenset(hold.loc[hold["always_default"].astype(str).str.lower() == "true", "variable"])
    return defaults, always


def impute_states(
    grid: pd.DataFrame, hold: pd.DataFrame, bin_hours: int, strategy: str, train_stays: set[int]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Sample-and-hold then fill every held variable; returns (grid, mask codes, fill values used)."""
    variables = hold["variable"].tolist()
    held, mask = hold_states(grid, hold, bin_hours)
    train_rows = held["stay_id"].isin(train_stays)
    defaults, always = fill_rules(hold)
    values = fill_values(held, variables, strategy, train_rows, defaults, always)
    filled = fill_remaining(held, mask, values)
    return filled, mask, values


def add_derived(grid: pd.DataFrame, cohort: pd.DataFrame, bin_hours: int) -> pd.DataFrame:
    """Demographics, PaO2/FiO2, shock index, SIRS, urine and fluid balances (needs `fluid_ml`)."""
    out = grid.merge(
        cohort[["stay_id", "age_years", "gender"]], on="stay_id", how="left", validate="many_to_one"
    )
    out["gender_male"] = (out.pop("gender").astype(str).str.upper() == "M").astype("float64")
    out["age_years"] = out["age_years"].astype("float64")
    out["pf_ratio_mmhg"] = out["pao2_mmhg"] / out["fio2_frac"].clip(lower=0.21)
    out["shock_index_bpm_per_mmhg"] = out["heart_rate_bpm"] / out["sbp_mmhg"].clip(lower=1.0)
    out["sirs_score"] = (
        ((out["temp_c"] > 38) | (out["temp_c"] < 36)).astype(float)
        + (out["heart_rate_bpm"] > 90).astype(float)
        + ((out["resp_rate_bpm"] > 20) | (out["paco2_mmhg"] < 32)).astype(float)
        + ((out["wbc_k_ul"] > 12) | (out["wbc_k_ul"] < 4)).astype(float)
    )
    urine = f"urine_output_ml_{bin_hours}h"
    out[urine] = out.pop("urine_output_ml").fillna(0.0)
    grouped = out.groupby("stay_id", sort=False)
    out["urine_output_total_ml"] = grouped[urine].cumsum()
    out["fluid_input_total_ml"] = grouped["fluid_ml"].cumsum()
    out["cumulative_fluid_balance_ml"] = out["fluid_input_total_ml"] - out["urine_output_total_ml"]
    out["sofa_24h"] = out["sofa_24h"].fillna(0.0).astype("float64")
    return out


def state_columns(hold: pd.DataFrame, bin_hours: int) -> list[str]:
    """State column names, in order."""
    return [
        "age_years",
        "gender_male",
        *hold["variable"].tolist(),
        "pf_ratio_mmhg",
        "shock_index_bpm_per_mmhg",
        "sirs_score",
        "sofa_24h",
        f"urine_output_ml_{bin_hours}h",
        "urine_output_total_ml",
        "fluid_input_total_ml",
        "cumulative_fluid_balance_ml",
    ]


def imputed_fraction(mask: pd.DataFrame) -> dict[str, float]:
    """Share of bins filled (neither measured nor held) per variable, for the manifest."""
    return {col: round(float((mask[col] == FILLED).mean()), 4) for col in mask.columns} if len(mask) else {}
