"""One chemotherapy cycle of the oncology simulator: delay, dose, 21 days of marrow and tumour.

Vectorised over the patients due for the cycle; each may have its own delay. The marrow, tumour
and death hazard advance on one-day steps; the dose acts at the end of the delay; the nadir, the
days below 0.5e9/L (febrile-neutropenia hazard) and the day-8 count (the measured nadir) are
tracked over the 21 days after it. CTCAE v5.0 grades come from the measured values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .oncology_dynamics import (
    DT_DAYS,
    BodyState,
    CommonNoise,
    Patients,
    apply_dose,
    marrow_step,
    tumour_and_hazard_step,
)
from .oncology_params import OncologyParameters

NADIR_SAMPLE_DAY = 8.0
P_NADIR_MEASURED = 0.6
EXPOSURE_DAYS = 7.0


def ctcae_neutropenia(anc: np.ndarray) -> np.ndarray:
    """CTCAE v5.0 neutrophil count decreased: <2.0 (LLN) G1, <1.5 G2, <1.0 G3, <0.5 G4 (1e9/L)."""
    return np.asarray(np.searchsorted([0.5, 1.0, 1.5, 2.0], anc, side="right").choose([4, 3, 2, 1, 0]))


def ctcae_platelets(plt: np.ndarray) -> np.ndarray:
    """CTCAE v5.0 platelet count decreased: <150 (LLN) G1, <75 G2, <50 G3, <25 G4 (1e9/L)."""
    return np.asarray(np.searchsorted([25.0, 50.0, 75.0, 150.0], plt, side="right").choose([4, 3, 2, 1, 0]))


def graded(u: np.ndarray, p3: np.ndarray) -> np.ndarray:
    """Grade from a uniform draw when P(grade >= 3) = p3: G4 below p3/5, G3 below p3, G2 below 3 p3,
    G1 below 8 p3 (assumed shape of the grade distribution)."""
    return np.asarray(np.select([u < p3 / 5, u < p3, u < 3 * p3, u < 8 * p3], [4, 3, 2, 1], 0))


@dataclass
class CycleOutcome:
    """What happened in the cycle for each patient (arrays aligned with the cycle's rows)."""

    dosed: np.ndarray  # alive when the dose was due
    true_nadir: np.ndarray
    days_below_0_5: np.ndarray
    measured_nadir: np.ndarray  # NaN when not measured
    febrile_neutropenia: np.ndarray
    toxic_death: np.ndarray
    grades: dict[str, np.ndarray]


def _run_days(
    local: BodyState,
    sub: Patients,
    t0: np.ndarray,
    delay: np.ndarray,
    dose_fraction: np.ndarray,
    dose_mg: np.ndarray,
    threshold: np.ndarray,
    p: OncologyParameters,
    cycle_days: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step `local` day by day through the delay, the dose and the cycle (updated in place).

    Returns the ANC nadir after the dose, the days with ANC < 0.5e9/L, the ANC on the nadir
    sampling day and whether each patient was dosed (alive on the dose day)."""
    n = len(delay)
    dose_step = np.round(delay / DT_DAYS).astype(int)
    end_step = dose_step + round(cycle_days / DT_DAYS)
    nadir = np.full(n, np.inf)
    below = np.zeros(n)
    day8 = np.full(n, np.nan)
    dosed = np.zeros(n, dtype=bool)
    sample_step = round(NADIR_SAMPLE_DAY / DT_DAYS)
    ref_exposure = p["claret.reference_exposure_g"]
    for j in range(int(end_step.max())):
        alive = np.isnan(local.death_day)
        due = (j == dose_step) & alive
        if due.any():
            apply_dose(local, sub, dose_mg, p, due)
            dosed |= due
        running = j < end_step
        after = (j >= dose_step) & running
        exposure = np.where(
            after & (j < dose_step + EXPOSURE_DAYS / DT_DAYS), dose_fraction * ref_exposure, 0.0
        )
        tumour_and_hazard_step(local, sub, t0 + j * DT_DAYS, exposure, alive & running, p, threshold)
        if running.any():
            if running.all():
                local.marrow = marrow_step(local.marrow, sub)
            else:
                moving = np.flatnonzero(running)
                local.marrow[moving] = marrow_step(local.marrow[moving], sub.take(moving))
        anc = local.anc
        nadir = np.where(after, np.minimum(nadir, anc), nadir)
        below += np.where(after & (anc < 0.5), DT_DAYS, 0.0)
        at8 = after & (j - dose_step == sample_step)
        day8 = np.where(at8, anc, day8)
    return nadir, below, day8, dosed


def run_cycle(
    rows: np.ndarray,
    k: int,
    t0: np.ndarray,
    delay: np.ndarray,
    dose_fraction: np.ndarray,
    dose_mg: np.ndarray,
    cum_dose_after: np.ndarray,
    platelets: np.ndarray,
    state: BodyState,
    pt: Patients,
    noise: CommonNoise,
    p: OncologyParameters,
    cycle_days: float,
) -> CycleOutcome:
    """Advance patients `rows` through the delay, the dose and the cycle's `cycle_days` days."""
    sub = pt.take(rows)
    x = state.marrow[rows]
    log_y, cum_h, death = state.log_tumour[rows], state.cum_hazard[rows], state.death_day[rows]
    local = BodyState(x, log_y, cum_h, death)
    nadir, below, day8, dosed = _run_days(
        local, sub, t0, delay, dose_fraction, dose_mg, noise.death_threshold[rows], p, cycle_days
    )
    state.marrow[rows], state.log_tumour[rows] = local.marrow, local.log_tumour
    state.cum_hazard[rows] = local.cum_hazard
    sampled_alive = np.isnan(local.death_day) | (local.death_day > t0 + delay + NADIR_SAMPLE_DAY)
    measured = (noise.nadir[rows, k, 0] < P_NADIR_MEASURED) & sampled_alive
    cv = p["friberg.anc_cv"]
    measured_nadir = np.where(measured & dosed, day8 * np.exp(cv * noise.nadir[rows, k, 1]), np.nan)
    fn = dosed & (noise.fn[rows, k] < 1 - np.exp(-p["toxicity.fn_rate_per_day_below_0_5"] * below))
    toxic = fn & (noise.toxic_death[rows, k] < p["toxicity.toxic_death_given_fn"])
    death_at = t0 + delay + 10.0
    local.death_day = np.where(
        toxic & (np.isnan(local.death_day) | (local.death_day > death_at)), death_at, local.death_day
    )
    state.death_day[rows] = local.death_day
    plt_nadir = platelets * np.exp(
        -sub.platelet_drop * dose_fraction * np.exp(0.3 * noise.platelet_nadir[rows, k])
    )
    u = noise.tox[rows, k]
    f2 = dose_fraction**2
    grades = {
        "neutropenia": np.where(
            np.isnan(measured_nadir), 0, ctcae_neutropenia(np.nan_to_num(measured_nadir, nan=9.0))
        ),
        "febrile_neutropenia": np.where(toxic, 5, np.where(fn, 3, 0)),
        "thrombocytopenia": ctcae_platelets(plt_nadir),
        "neuropathy": graded(
            u[:, 0], p["toxicity.neuropathy_g3_per_1000_mg_m2"] * dose_fraction * cum_dose_after / 1000.0
        ),
        "diarrhoea": graded(u[:, 1], p["toxicity.diarrhoea_g3_full_dose"] * f2),
        "mucositis": graded(u[:, 2], p["toxicity.mucositis_g3_full_dose"] * f2),
        "fatigue": graded(u[:, 3], p["toxicity.fatigue_g3_full_dose"] * f2),
    }
    grades = {key: np.where(dosed, g, 0) for key, g in grades.items()}
    return CycleOutcome(dosed, np.where(dosed, nadir, np.nan), below, measured_nadir, fn, toxic, grades)
