"""Patient-level dynamics of the oncology simulator, vectorised over patients.

- Myelosuppression: Friberg et al. 2002 (proliferating pool, three transit compartments,
  circulating neutrophils, feedback (Circ0/Circ)^gamma), driven by docetaxel plasma concentration
  through an Emax effect. The drug pulse lasts hours while the marrow moves over days, so each
  dose is applied as the exact log-kill of the proliferating pool over its exposure window
  (operator splitting), and the marrow ODE then runs with RK4 on one-day steps.
- Pharmacokinetics: the 3-compartment docetaxel model (Bruno 1996) that Friberg 2002 used,
  1-hour infusion, solved once for a unit dose (linear PK) with a matrix exponential.
- Tumour size: Claret et al. 2009, dy/dt = KL y - KD exp(-lambda t) E(t) y, exact per step.
- Hazards: death with a log-hazard linked to log(tumour size / baseline) and ECOG; febrile
  neutropenia from the days spent with ANC < 0.5e9/L; toxic death given febrile neutropenia.

All randomness is drawn up front (`CommonNoise`) so two policies simulated with the same seed
share every patient and every chance event (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
from scipy.linalg import expm

from .oncology_params import OncologyParameters

DT_DAYS = 1.0
TOX_CATEGORIES = ("neuropathy", "diarrhoea", "mucositis", "fatigue")
MAX_ASSESSMENTS = 16


@lru_cache(maxsize=4)
def unit_dose_exposure_grid(
    k10: float, k12: float, k21: float, k13: float, k31: float, v1: float, mw: float, infusion_h: float
) -> tuple[np.ndarray, np.ndarray]:
    """(trapezoid weights, concentration in uM per mg) over the 4 days after a 1 mg infusion.

    Linear PK, so one unit-dose profile serves every dose. The grid steps through the infusion
    with the augmented matrix exponential (constant input rate) and then without input.
    """
    a = np.array([[-(k10 + k12 + k13), k21, k31], [k12, -k21, 0.0], [k13, 0.0, -k31]])
    t_inf = infusion_h / 24.0
    fine, coarse = t_inf / 10, 0.05
    aug = np.zeros((4, 4))
    aug[:3, :3], aug[0, 3] = a, 1.0 / t_inf  # mg/day into the central compartment
    step_in, step_fine, step_coarse = expm(aug * fine), expm(a * fine), expm(a * coarse)
    state = np.array([0.0, 0.0, 0.0, 1.0])
    times, conc = [0.0], [0.0]
    t = 0.0
    while t < 4.0 - 1e-9:
        if t < t_inf - 1e-12:
            state, dt = step_in @ state, fine
        elif t < 0.5 - 1e-12:
            state[:3], dt = step_fine @ state[:3], fine
        else:
            state[:3], dt = step_coarse @ state[:3], coarse
        t += dt
        times.append(t)
        conc.append(state[0] / v1 / mw)  # mg/L -> uM
    grid = np.asarray(times)
    weights = np.zeros(len(grid))
    weights[:-1] += np.diff(grid) / 2
    weights[1:] += np.diff(grid) / 2
    return weights, np.asarray(conc)


@dataclass
class Patients:
    """Covariates and individual parameters, one array entry per patient."""

    age_years: np.ndarray
    sex_male: np.ndarray
    height_cm: np.ndarray
    weight_kg: np.ndarray
    ecog: np.ndarray
    circ0: np.ndarray
    ktr: np.ndarray
    gamma: np.ndarray
    emax: np.ndarray
    ec50: np.ndarray
    kl: np.ndarray
    kd: np.ndarray
    lam: np.ndarray
    tumour0_mm: np.ndarray
    platelets0: np.ndarray
    platelet_drop: np.ndarray
    haemoglobin0: np.ndarray
    creatinine0: np.ndarray
    bilirubin0: np.ndarray

    def take(self, idx: np.ndarray) -> Patients:
        """The patients at positions `idx`."""
        return Patients(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def mosteller_bsa(height_cm: np.ndarray, weight_kg: np.ndarray) -> np.ndarray:
    """Body-surface area in m2 by Mosteller (N Engl J Med 1987;317:1098): sqrt(h*w/3600)."""
    return np.asarray(np.sqrt(np.asarray(height_cm) * np.asarray(weight_kg) / 3600.0))


def _lognormal(rng: np.random.Generator, typical: float, sd: float, n: int) -> np.ndarray:
    return np.asarray(typical * np.exp(sd * rng.standard_normal(n)))


def draw_patients(n: int, rng: np.random.Generator, p: OncologyParameters) -> Patients:
    """Covariates (age, sex, size, ECOG) and Friberg/Claret parameters with their published IIV."""
    male = rng.random(n) < p["covariates.p_male"]
    age = np.clip(rng.normal(p["covariates.age_mean_years"], p["covariates.age_sd_years"], n), 30, 85)
    height = np.where(male, rng.normal(175, 7, n), rng.normal(162, 6, n))
    weight = np.exp(np.where(male, np.log(78), np.log(66)) + 0.18 * rng.standard_normal(n))
    u = rng.random(n)
    ecog = (u > p["covariates.ecog_p0"]).astype(int) + (u > p["covariates.ecog_p0"] + p["covariates.ecog_p1"])
    mtt_days = _lognormal(rng, p["friberg.mtt_h"], p.sd("friberg.mtt_h"), n) / 24.0
    circ0 = _lognormal(rng, p["friberg.circ0"], p.sd("friberg.circ0"), n)
    return Patients(
        age_years=np.round(age, 1),
        sex_male=male.astype(int),
        height_cm=np.round(height, 1),
        weight_kg=np.round(weight, 1),
        ecog=ecog.astype(int),
        circ0=circ0 * np.exp(p["covariates.circ0_ecog_effect"] * ecog),
        ktr=(p["friberg.n_transit"] + 1) / mtt_days,
        gamma=_lognormal(rng, p["friberg.gamma"], p.sd("friberg.gamma"), n),
        emax=_lognormal(rng, p["friberg.emax"], p.sd("friberg.emax"), n),
        ec50=_lognormal(rng, p["friberg.ec50_um"], p.sd("friberg.ec50_um"), n),
        kl=_lognormal(rng, p["claret.kl_per_week"], p.sd("claret.kl_per_week"), n) / 7.0,
        kd=_lognormal(rng, p["claret.kd_per_g_week"], p.sd("claret.kd_per_g_week"), n) / 7.0,
        lam=_lognormal(rng, p["claret.lambda_per_week"], p.sd("claret.lambda_per_week"), n) / 7.0,
        tumour0_mm=_lognormal(rng, p["claret.baseline_size_mm"], p.sd("claret.baseline_size_mm"), n),
        platelets0=_lognormal(rng, 250.0, 0.25, n),
        platelet_drop=_lognormal(
            rng, p["toxicity.platelet_drop_full_dose"], p.sd("toxicity.platelet_drop_full_dose"), n
        ),
        haemoglobin0=rng.normal(128, 14, n),
        creatinine0=_lognormal(rng, 80.0, 0.2, n),
        bilirubin0=_lognormal(rng, 9.0, 0.35, n),
    )


@dataclass
class CommonNoise:
    """Every chance event of every patient, drawn before any policy acts (common random numbers)."""

    death_threshold: np.ndarray  # (n,) Exp(1): death when the cumulative hazard reaches it
    fn: np.ndarray  # (n, K) uniforms for febrile neutropenia
    toxic_death: np.ndarray  # (n, K)
    tox: np.ndarray  # (n, K, 4) uniforms for neuropathy, diarrhoea, mucositis, fatigue
    lab: np.ndarray  # (n, K, 6) standard normals: ANC, platelets, Hb, creatinine, bilirubin, weight
    nadir: np.ndarray  # (n, K, 2): uniform (is the nadir measured) and standard normal (its error)
    platelet_nadir: np.ndarray  # (n, K) standard normal
    tumour: np.ndarray  # (n, K + MAX_ASSESSMENTS) standard normal reading errors
    censor: np.ndarray  # (n, 2) uniforms: is the patient lost, and when

    def take(self, idx: np.ndarray) -> CommonNoise:
        """The noise of the patients at positions `idx`."""
        return CommonNoise(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def draw_noise(n: int, n_cycles: int, rng: np.random.Generator) -> CommonNoise:
    """All dynamic randomness for `n` patients and up to `n_cycles` cycles."""
    return CommonNoise(
        death_threshold=rng.exponential(1.0, n),
        fn=rng.random((n, n_cycles)),
        toxic_death=rng.random((n, n_cycles)),
        tox=rng.random((n, n_cycles, len(TOX_CATEGORIES))),
        lab=rng.standard_normal((n, n_cycles, 6)),
        nadir=np.stack([rng.random((n, n_cycles)), rng.standard_normal((n, n_cycles))], axis=2),
        platelet_nadir=rng.standard_normal((n, n_cycles)),
        tumour=rng.standard_normal((n, n_cycles + MAX_ASSESSMENTS)),
        censor=rng.random((n, 2)),
    )


@dataclass
class BodyState:
    """The evolving marrow, tumour and hazard state of every patient."""

    marrow: np.ndarray  # (n, 5): proliferating, transit 1-3, circulating ANC (1e9/L)
    log_tumour: np.ndarray  # (n,) log of tumour size in mm
    cum_hazard: np.ndarray  # (n,)
    death_day: np.ndarray  # (n,) NaN while alive

    @classmethod
    def start(cls, patients: Patients) -> BodyState:
        """Steady state before the first dose."""
        n = len(patients.circ0)
        return cls(
            np.repeat(patients.circ0[:, None], 5, axis=1),
            np.log(patients.tumour0_mm),
            np.zeros(n),
            np.full(n, np.nan),
        )

    @property
    def anc(self) -> np.ndarray:
        """Circulating neutrophils (1e9/L)."""
        return np.asarray(self.marrow[:, 4])


def _marrow_rate(x: np.ndarray, ktr: np.ndarray, gamma: np.ndarray, circ0: np.ndarray) -> np.ndarray:
    feedback = (circ0 / np.maximum(x[:, 4], 1e-6)) ** gamma
    out = np.empty_like(x)
    out[:, 0] = ktr * x[:, 0] * (feedback - 1.0)
    out[:, 1:] = ktr[:, None] * (x[:, :-1] - x[:, 1:])
    return out


def marrow_step(x: np.ndarray, patients: Patients, dt: float = DT_DAYS) -> np.ndarray:
    """One RK4 step of the Friberg marrow ODE (no drug; doses act through `apply_dose`)."""
    k, g, c0 = patients.ktr, patients.gamma, patients.circ0
    k1 = _marrow_rate(x, k, g, c0)
    k2 = _marrow_rate(x + dt / 2 * k1, k, g, c0)
    k3 = _marrow_rate(x + dt / 2 * k2, k, g, c0)
    k4 = _marrow_rate(x + dt * k3, k, g, c0)
    return np.asarray(np.maximum(x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), 1e-6))


def apply_dose(
    state: BodyState, patients: Patients, dose_mg: np.ndarray, p: OncologyParameters, rows: np.ndarray
) -> None:
    """Log-kill of the proliferating pool by one docetaxel infusion (Emax effect integrated)."""
    if not rows.any():
        return
    w, conc = unit_dose_exposure_grid(
        p["docetaxel_pk.k10_per_day"],
        p["docetaxel_pk.k12_per_day"],
        p["docetaxel_pk.k21_per_day"],
        p["docetaxel_pk.k13_per_day"],
        p["docetaxel_pk.k31_per_day"],
        p["docetaxel_pk.v1_l"],
        p["docetaxel_pk.mw_mg_per_umol"],
        p["docetaxel_pk.infusion_h"],
    )
    c = dose_mg[rows, None] * conc[None, :]
    effect = (patients.emax[rows, None] * c / (patients.ec50[rows, None] + c)) @ w
    x = state.marrow[rows]
    feedback = (patients.circ0[rows] / np.maximum(x[:, 4], 1e-6)) ** patients.gamma[rows]
    x[:, 0] *= np.exp(-patients.ktr[rows] * feedback * effect)
    state.marrow[rows] = x


def tumour_and_hazard_step(
    state: BodyState,
    patients: Patients,
    t_day: np.ndarray,
    exposure_g: np.ndarray,
    alive: np.ndarray,
    p: OncologyParameters,
    death_threshold: np.ndarray,
    dt: float = DT_DAYS,
) -> None:
    """Claret tumour change over `dt` days (exact for constant exposure) and the death hazard."""
    lam = patients.lam
    decay = (np.exp(-lam * t_day) - np.exp(-lam * (t_day + dt))) / lam
    state.log_tumour = state.log_tumour + np.where(
        alive, patients.kl * dt - patients.kd * exposure_g * decay, 0.0
    )
    log_ratio = state.log_tumour - np.log(patients.tumour0_mm)
    hazard = p["survival.baseline_hazard_per_day"] * np.exp(
        p["survival.beta_ecog"] * patients.ecog + p["survival.beta_log_tumour_ratio"] * log_ratio
    )
    before = state.cum_hazard
    state.cum_hazard = before + np.where(alive, hazard * dt, 0.0)
    crossed = alive & (state.cum_hazard >= death_threshold)
    frac = (death_threshold - before) / np.maximum(hazard * dt, 1e-12)
    state.death_day = np.where(crossed, t_day + np.clip(frac, 0, 1) * dt, state.death_day)
