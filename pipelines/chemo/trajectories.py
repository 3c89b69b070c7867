"""Canonical cycles -> trajectory rows: states, the RDI action and its parts, rewards, ends.

Action of cycle k (Hryniuk & Bush 1984 dose intensity; RDI as in Lyman 2009): relative dose
intensity = dose fraction x planned interval / actual interval, where the actual interval is the
time since the previous cycle's start (the delay before cycle k is part of cycle k's decision,
taken at its scheduled start; cycle 1 has the planned interval). Kept beside it: the dose
fraction and the delay in days, and the discretised action (bins of RDI, edges from config).
When the source is simulated, the behaviour policy's option probabilities give the exact
probability of the logged bin (`behaviour_prob`) and density of the logged RDI
(`behaviour_density`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dosewise.data_schemas import columns as c

from ..binning import discretize_doses
from ..simulators.oncology_policy import OPTIONS, option_rdi, rdi_bin_probabilities, rdi_density
from .config import ChemoPipelineConfig
from .rewards import CensoringCurves, patient_outcomes, rewards_and_ends
from .states import STATE_COLUMNS, cycle_states


def add_actions(cycles: pd.DataFrame, edges: list[float]) -> pd.DataFrame:
    """RDI, its parts (dose fraction, delay days) and the discretised action."""
    prev = cycles.groupby("patient_id", sort=False)["cycle_start_date"].shift(1)
    planned = cycles["planned_interval_days"].to_numpy(np.float64)
    interval = np.where(
        prev.notna(), (cycles["cycle_start_date"] - prev).dt.days.to_numpy(np.float64), planned
    )
    out = cycles.copy()
    out[c.DELAY_DAYS] = interval - planned
    out[c.RDI_FRACTION] = np.maximum(
        out["dose_fraction"].to_numpy() * planned / np.maximum(interval, 1.0), 0.0
    )
    out[c.ACTION] = discretize_doses(out[c.RDI_FRACTION], edges)
    return out


def add_behaviour(
    frame: pd.DataFrame, behaviour: pd.DataFrame, edges: list[float], sd: float, interval_days: float
) -> pd.DataFrame:
    """Known behaviour probability of the logged bin and density of the logged RDI (simulated data).

    The simulated clinicians' options are RDI levels of the regimen's planned interval
    (`interval_days`: the simulator runs one regimen).
    """
    probs = frame[["patient_id", "cycle_number"]].merge(
        behaviour, on=["patient_id", "cycle_number"], how="left"
    )
    cols = [f"p_option_{i}" for i in range(len(OPTIONS))]
    p = probs[cols].to_numpy(np.float64)
    centres = option_rdi(interval_days)
    bins = rdi_bin_probabilities(np.nan_to_num(p), centres, sd, edges)
    logged = bins[np.arange(len(frame)), frame[c.ACTION].to_numpy()]
    out = frame.copy()
    out[c.BEHAVIOUR_PROB] = logged
    out[c.BEHAVIOUR_DENSITY] = rdi_density(frame[c.RDI_FRACTION].to_numpy(), np.nan_to_num(p), centres, sd)
    out["_behaviour_known"] = ~np.isnan(p).any(axis=1)
    return out


def assemble(
    cycles: pd.DataFrame,
    patients: pd.DataFrame,
    config: ChemoPipelineConfig,
    episode_ids: dict[str, str],
    behaviour: pd.DataFrame | None,
    dose_noise_sd: float,
    interval_days: float | None = None,
    censoring: CensoringCurves | None = None,
) -> pd.DataFrame:
    """One trajectory row per cycle with every contract column (see module doc).

    `interval_days`: the planned interval the behaviour probabilities are of (default: the first
    cycle's); `censoring`: G per stratum for `reward.censoring = "ipcw_km"` (default: fitted on
    these patients). A run in batches passes both from the whole run.
    """
    states = cycle_states(cycles, patients)
    frame = add_actions(cycles, config.actions.rdi_edges)
    first = frame["patient_id"].map(patients.set_index("patient_id")["first_cycle_date"])
    decision_days = (frame["cycle_start_date"] - first).dt.days.to_numpy(np.float64) - frame[c.DELAY_DAYS]
    outcomes = patient_outcomes(patients, config.reward)
    days = decision_days.to_numpy(np.float64)
    ends = rewards_and_ends(frame, outcomes, config.reward, config.episode, days, censoring)
    frame = pd.concat(
        [
            frame[
                [
                    "patient_id",
                    "cycle_number",
                    "cycle_start_date",
                    "planned_interval_days",
                    c.RDI_FRACTION,
                    c.DOSE_FRACTION,
                    c.DELAY_DAYS,
                    c.ACTION,
                ]
            ],
            states.drop(columns=["cycle_number"]),
            ends,
        ],
        axis=1,
    )
    columns = [
        c.EPISODE_ID,
        c.STEP,
        c.BIN_START,
        *STATE_COLUMNS,
        c.RDI_FRACTION,
        c.DOSE_FRACTION,
        c.DELAY_DAYS,
        c.ACTION,
    ]
    if behaviour is not None:
        first = float(cycles["planned_interval_days"].iloc[0]) if interval_days is None else interval_days
        frame = add_behaviour(frame, behaviour, config.actions.rdi_edges, dose_noise_sd, first)
        columns += [c.BEHAVIOUR_PROB, c.BEHAVIOUR_DENSITY]
    frame[c.EPISODE_ID] = frame["patient_id"].astype(str).map(episode_ids)
    frame[c.STEP] = frame["cycle_number"].astype("int64") - 1
    frame[c.BIN_START] = pd.to_datetime(frame["cycle_start_date"]).astype("datetime64[ns]")
    frame = frame.rename(columns={"reward": c.REWARD, "terminal": c.TERMINAL, "timeout": c.TIMEOUT})
    frame["cycle_number"] = frame["cycle_number"].astype(np.float64)
    out = frame[[*columns, c.REWARD, c.TERMINAL, c.TIMEOUT]]
    return out.sort_values([c.EPISODE_ID, c.STEP], kind="stable").reset_index(drop=True)
