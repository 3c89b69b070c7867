"""Simulate a cohort on docetaxel under any dosing policy: canonical cycles, outcomes, propensities.

`simulate_cohort` draws patients and every chance event from `seed` first (common random
numbers), then runs the regimen cycle by cycle: at each scheduled start it measures the counts,
chemistry and tumour (RECIST 1.1 progression stops treatment), builds the ETL's state columns,
asks the policy, and runs the cycle (`oncology_cycle`). After the last cycle it follows every
patient to the horizon (tumour regrowth, death hazard, imaging every 6 weeks). The first cycle is
always given on its date (a delay of cycle 1 is invisible in records).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..chemo.config import TOXICITY_CATEGORIES
from ..chemo.states import cycle_states
from .oncology_cycle import run_cycle
from .oncology_dynamics import (
    BodyState,
    CommonNoise,
    Patients,
    draw_noise,
    draw_patients,
    mosteller_bsa,
    tumour_and_hazard_step,
)
from .oncology_params import OncologyParameters, load_oncology_parameters
from .oncology_policy import OPTIONS, CyclePolicy, as_decision


@dataclass(frozen=True)
class RegimenSettings:
    """The simulated regimen and follow-up (docetaxel 75 mg/m2 every 3 weeks, 6 cycles)."""

    regimen: str = "docetaxel_75_q3w"
    drug: str = "docetaxel"
    planned_dose_mg_per_m2: float = 75.0
    cycle_days: int = 21
    n_cycles: int = 6
    horizon_days: int = 365
    censoring: bool = True


@dataclass
class SimulatedCohort:
    """Canonical cycles (one row per delivered cycle) and one row per patient with outcomes."""

    cycles: pd.DataFrame
    patients: pd.DataFrame
    settings: RegimenSettings = field(default_factory=RegimenSettings)


_PENDING = {
    name: np.nan
    for name in (
        "dose_mg_per_m2",
        "dose_fraction",
        "anc_nadir_1e9_per_l",
        *(f"grade_{cat}" for cat in TOXICITY_CATEGORIES),
    )
}


def _patients_frame(pt: Patients) -> pd.DataFrame:
    n = len(pt.age_years)
    return pd.DataFrame(
        {
            "patient_id": np.arange(1, n + 1, dtype=np.int64),
            "age_years": pt.age_years,
            "sex_male": pt.sex_male,
            "ecog": pt.ecog,
            "height_cm": pt.height_cm,
            "weight_kg": pt.weight_kg,
        }
    )


def _observe(
    rows: np.ndarray,
    k: int,
    state: BodyState,
    pt: Patients,
    noise_lab: np.ndarray,
    tumour_z: np.ndarray,
    p: OncologyParameters,
) -> dict[str, np.ndarray]:
    z = noise_lab[rows, k]
    weight = np.round(pt.weight_kg[rows] * np.exp(0.01 * z[:, 5]), 1)
    return {
        "anc_1e9_per_l": np.round(state.anc[rows] * np.exp(p["friberg.anc_cv"] * z[:, 0]), 2),
        "platelets_1e9_per_l": np.round(pt.platelets0[rows] * np.exp(0.1 * z[:, 1])),
        "haemoglobin_g_per_l": np.round(pt.haemoglobin0[rows] - 2.0 * k + 5.0 * z[:, 2]),
        "creatinine_umol_per_l": np.round(pt.creatinine0[rows] * np.exp(0.08 * z[:, 3])),
        "bilirubin_umol_per_l": np.round(pt.bilirubin0[rows] * np.exp(0.15 * z[:, 4]), 1),
        "tumour_size_mm": np.round(
            np.exp(state.log_tumour[rows]) * np.exp(p["claret.measurement_cv"] * tumour_z), 1
        ),
        "weight_kg": weight,
        "bsa_m2": np.round(mosteller_bsa(pt.height_cm[rows], weight), 2),
    }


def _progressed(
    k: int, tumour_mm: np.ndarray, min_tumour_mm: np.ndarray, p: OncologyParameters
) -> np.ndarray:
    """RECIST 1.1 progression at this cycle's measurement: grown by `followup.progression_increase`
    and by `followup.progression_min_mm` over the smallest size so far (never at the first cycle)."""
    inc = p["followup.progression_increase"]
    growth_mm = tumour_mm - min_tumour_mm
    out: np.ndarray = (k > 0) & (tumour_mm >= (1 + inc) * min_tumour_mm) & (
        growth_mm >= p["followup.progression_min_mm"]
    )
    return out


def _current_states(
    history: list[pd.DataFrame], current: pd.DataFrame, patients: pd.DataFrame, n_patients: int, k: int
) -> pd.DataFrame:
    """The ETL's state of each patient in `current` at cycle k + 1, from their earlier cycles."""
    due = np.zeros(n_patients + 1, dtype=bool)
    due[current["patient_id"].to_numpy()] = True
    frames = [h[due[h["patient_id"].to_numpy()]] for h in history]
    hist = (
        pd.concat([*frames, current], ignore_index=True)
        .sort_values(["patient_id", "cycle_number"], kind="stable")
        .reset_index(drop=True)
    )
    states = cycle_states(hist, patients, days=hist["scheduled_day"].to_numpy(np.float64))
    return states[hist["cycle_number"].to_numpy() == k + 1].reset_index(drop=True)


def simulate_cohort(
    policy: CyclePolicy,
    n_patients: int,
    seed: int,
    settings: RegimenSettings | None = None,
    params: OncologyParameters | None = None,
) -> SimulatedCohort:
    """Run `n_patients` through the regimen under `policy` (see module doc)."""
    s = settings or RegimenSettings()
    p = params or load_oncology_parameters()
    rng = np.random.default_rng(seed)
    pt = draw_patients(n_patients, rng, p)
    noise = draw_noise(n_patients, s.n_cycles, rng)
    policy_rng = np.random.default_rng([seed, 7919])
    state = BodyState.start(pt)
    patients = _patients_frame(pt)
    t = np.zeros(n_patients)
    lost = noise.censor[:, 0] < (p["followup.censoring_fraction"] if s.censoring else 0.0)
    censor_day = np.where(lost, 42.0 + noise.censor[:, 1] * (s.horizon_days - 42.0), np.inf)
    min_tumour = np.full(n_patients, np.inf)
    prog_day = np.full(n_patients, np.nan)
    cum_dose = np.zeros(n_patients)
    history: list[pd.DataFrame] = []
    for k in range(s.n_cycles):
        alive = np.isnan(state.death_day) | (state.death_day > t)
        rows = np.flatnonzero(alive & np.isnan(prog_day) & (t < censor_day))
        if rows.size == 0:
            break
        obs = _observe(rows, k, state, pt, noise.lab, noise.tumour[rows, k], p)
        progressed = _progressed(k, obs["tumour_size_mm"], min_tumour[rows], p)
        prog_day[rows[progressed]] = t[rows[progressed]]
        keep = ~progressed
        rows = rows[keep]
        obs = {key: v[keep] for key, v in obs.items()}
        if rows.size == 0:
            break
        min_tumour[rows] = np.minimum(min_tumour[rows], obs["tumour_size_mm"])
        current = pd.DataFrame(
            {
                "patient_id": patients["patient_id"].to_numpy()[rows],
                "cycle_number": k + 1,
                "scheduled_day": t[rows],
                **obs,
                **_PENDING,
            }
        )
        states = _current_states(history, current, patients, n_patients, k)
        order = np.argsort(current["patient_id"].to_numpy(), kind="stable")
        rows, current = rows[order], current.iloc[order].reset_index(drop=True)
        decision = as_decision(policy(states, policy_rng), len(rows), s.cycle_days)
        delay = decision.delay_days if k > 0 else np.zeros(len(rows))
        bsa = current["bsa_m2"].to_numpy()
        dose_mg = np.round(decision.dose_fraction * s.planned_dose_mg_per_m2 * bsa, 1)
        fraction = dose_mg / (s.planned_dose_mg_per_m2 * bsa)
        dose_m2 = dose_mg / bsa
        out = run_cycle(
            rows,
            k,
            t[rows],
            delay,
            fraction,
            dose_mg,
            cum_dose[rows] + dose_m2,
            current["platelets_1e9_per_l"].to_numpy(),
            state,
            pt,
            noise,
            p,
            s.cycle_days,
        )
        cum_dose[rows] += np.where(out.dosed, dose_m2, 0.0)
        current = current.assign(
            regimen=s.regimen,
            cycle_start_day=t[rows] + delay,
            delay_days=delay,
            planned_interval_days=float(s.cycle_days),
            planned_dose_mg_per_m2=s.planned_dose_mg_per_m2,
            delivered_dose_mg=dose_mg,
            dose_mg_per_m2=dose_m2,
            dose_fraction=fraction,
            anc_nadir_1e9_per_l=np.round(out.measured_nadir, 2),
            true_anc_nadir_1e9_per_l=out.true_nadir,
            **{f"grade_{key}": g for key, g in out.grades.items()},
        )
        if decision.option_probs is not None and decision.chosen_option is not None:
            current = current.assign(
                behaviour_option=decision.chosen_option,
                **{f"p_option_{i}": decision.option_probs[:, i] for i in range(len(OPTIONS))},
            )
        history.append(current[out.dosed].reset_index(drop=True))
        t[rows] = t[rows] + delay + s.cycle_days
    _follow_up(state, pt, noise, p, s, t, min_tumour, prog_day)
    return SimulatedCohort(
        _finish_cycles(history), _finish_patients(patients, state, prog_day, censor_day, s), s
    )


def _follow_up(
    state: BodyState,
    pt: Patients,
    noise: CommonNoise,
    p: OncologyParameters,
    s: RegimenSettings,
    t: np.ndarray,
    min_tumour: np.ndarray,
    prog_day: np.ndarray,
) -> None:
    """Off treatment to the horizon: tumour regrowth, death hazard, RECIST imaging every 6 weeks."""
    every = p["followup.imaging_every_days"]
    tumour_z = noise.tumour[:, s.n_cycles :]
    threshold = noise.death_threshold
    n_scans = np.zeros(len(t), dtype=int)
    next_scan = t + every
    day = t.copy()
    while True:
        alive = np.isnan(state.death_day) & (day < s.horizon_days)
        if not alive.any():
            break
        tumour_and_hazard_step(state, pt, day, np.zeros(len(t)), alive, p, threshold, dt=1.0)
        day = np.where(alive, day + 1.0, day)
        scan = alive & (day >= next_scan) & np.isnan(prog_day) & (n_scans < tumour_z.shape[1])
        if scan.any():
            idx = np.flatnonzero(scan)
            z = tumour_z[idx, n_scans[idx]]
            size = np.exp(state.log_tumour[idx]) * np.exp(p["claret.measurement_cv"] * z)
            prog = (size >= (1 + p["followup.progression_increase"]) * min_tumour[idx]) & (
                size - min_tumour[idx] >= p["followup.progression_min_mm"]
            )
            prog_day[idx[prog]] = day[idx[prog]]
            min_tumour[idx] = np.minimum(min_tumour[idx], size)
            n_scans[idx] += 1
            next_scan[idx] += every


def _finish_cycles(history: list[pd.DataFrame]) -> pd.DataFrame:
    cycles = pd.concat(history, ignore_index=True) if history else pd.DataFrame()
    return cycles.sort_values(["patient_id", "cycle_number"], kind="stable").reset_index(drop=True)


def _finish_patients(
    patients: pd.DataFrame, state: BodyState, prog_day: np.ndarray, censor_day: np.ndarray, s: RegimenSettings
) -> pd.DataFrame:
    death = np.where(state.death_day <= s.horizon_days, state.death_day, np.nan)
    followup = np.where(
        np.isfinite(censor_day) & (np.isnan(death) | (censor_day < death)),
        censor_day,
        np.where(np.isnan(death), s.horizon_days + 30.0, death),
    )
    death = np.where(np.isfinite(censor_day) & (censor_day < np.nan_to_num(death, nan=np.inf)), np.nan, death)
    prog = np.where(prog_day <= followup, prog_day, np.nan)
    return patients.assign(death_day=death, progression_day=prog, last_followup_day=np.floor(followup))
