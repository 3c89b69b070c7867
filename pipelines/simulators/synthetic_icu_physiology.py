"""Case mix and hour-by-hour physiology of synthetic ICU stays, vectorised over a chunk of stays.

A latent infection stress `x` (0 healthy .. ~1.5 refractory) drives organ dysfunction the way the
SOFA components read it (Vincent et al. 1996): MAP falls, lactate and creatinine rise, platelets
fall, bilirubin rises, GCS and PaO2/FiO2 fall. A clinician-like policy answers hypotension with
crystalloid boluses, then norepinephrine titrated to MAP 65-75 (Surviving Sepsis Campaign 2021);
MAP responds to fluids (diminishing with volume given) and to vasopressors (an Emax curve), and
lactate clears when perfusion is restored, so treatment changes outcomes and policies have signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .synthetic_icu_config import SyntheticIcuConfig

LN2 = float(np.log(2.0))
NONE, SEPTIC, INFECTION_ONLY, OTHER_SHOCK = 0, 1, 2, 3
PRESSOR_NOREPI, PRESSOR_PHENYL, PRESSOR_EPI, PRESSOR_DOPAMINE = 0, 1, 2, 3


@dataclass
class Cohort:
    """Per-stay draws (arrays of length n): who the patient is and what will happen to them."""

    n: int
    is_second: np.ndarray      # second ICU stay of the previous stay's patient (readmission)
    protected: np.ndarray      # first stay of a readmitted patient: must survive to come back
    subject_index: np.ndarray  # local patient index within the chunk
    age: np.ndarray            # years at this admission (float)
    female: np.ndarray
    case: np.ndarray           # NONE / SEPTIC / INFECTION_ONLY / OTHER_SHOCK
    severity: np.ndarray
    infection_h: np.ndarray    # hours from ICU intime (nan: none)
    antibiotic_h: np.ndarray   # nan: none
    culture_h: np.ndarray      # nan: none
    responder: np.ndarray
    half_life_h: np.ndarray
    weight_kg: np.ndarray
    height_cm: np.ndarray
    arterial: np.ndarray
    weight_lb: np.ndarray
    mcg_min: np.ndarray
    pressor_kind: np.ndarray
    foley: np.ndarray
    planned_los_h: np.ndarray
    baseline: dict[str, np.ndarray]


@dataclass
class Course:
    """Hourly arrays (n, T) of one chunk's stays plus per-stay length of stay and death."""

    hourly: dict[str, np.ndarray]
    los_h: np.ndarray
    died_icu: np.ndarray

    @property
    def hours(self) -> int:
        """Width T of the hourly grid."""
        return int(self.hourly["x"].shape[1])

    def in_stay(self) -> np.ndarray:
        """(n, T) mask of hours inside each ICU stay."""
        return np.arange(self.hours)[None, :] < self.los_h[:, None]


def draw_cohort(rng: np.random.Generator, n: int, config: SyntheticIcuConfig) -> Cohort:
    """Draw who the `n` stays of a chunk are: case type, timing of infection care, baselines."""
    is_second = rng.random(n) < config.readmission_fraction
    is_second[0] = False
    is_second[1:] &= ~is_second[:-1]  # pairs never chain
    protected = np.zeros(n, dtype=bool)
    protected[:-1] = is_second[1:]
    subject_index = np.cumsum(~is_second) - 1

    u = rng.random(n)
    cut = np.cumsum([config.sepsis_fraction, config.infection_only_fraction,
                     config.other_shock_fraction])
    case = np.select([u < cut[0], u < cut[1], u < cut[2]],
                     [SEPTIC, INFECTION_ONLY, OTHER_SHOCK], NONE).astype(np.int64)
    severity = np.select(
        [case == SEPTIC, case == INFECTION_ONLY, case == OTHER_SHOCK],
        [rng.uniform(0.55, 1.3, n), rng.uniform(0.02, 0.08, n), rng.uniform(0.35, 0.8, n)], 0.0)
    infected = (case == SEPTIC) | (case == INFECTION_ONLY)
    infection_h = np.where(infected, rng.uniform(-24.0, 24.0, n),
                           np.where(case == OTHER_SHOCK, rng.uniform(0.0, 12.0, n), np.nan))
    culture_first = rng.random(n) < 0.6
    culture_h = np.where(culture_first, infection_h + rng.uniform(0, 4, n), np.nan)
    antibiotic_h = np.where(culture_first, culture_h + rng.uniform(0.5, 12, n),
                            infection_h + rng.uniform(0, 3, n))
    culture_h = np.where(culture_first, culture_h, antibiotic_h + rng.uniform(0.5, 20, n))
    antibiotic_h = np.where(infected, antibiotic_h, np.nan)
    culture_h = np.where(infected, culture_h, np.nan)

    age = np.where(rng.random(n) < config.minor_fraction, rng.uniform(15, 17.9, n),
                   np.clip(rng.normal(64, 16, n), 18, 95))
    female = rng.random(n) < 0.44
    weight = np.clip(rng.normal(np.where(female, 72, 86), 18), 38, 220).round(1)
    height = np.clip(rng.normal(np.where(female, 162, 176), 8), 140, 205).round(0)
    prev = np.maximum(np.arange(n) - 1, 0)
    for same_person in (age, female, weight, height):
        same_person[is_second] = same_person[prev][is_second]
    responder = rng.random(n) < np.where(case == SEPTIC, 0.78, 1.0)
    half_life = rng.uniform(10, 36, n)
    u_kind = rng.random(n)
    pressor_kind = np.select([u_kind < 0.08, u_kind < 0.12, u_kind < 0.15],
                             [PRESSOR_PHENYL, PRESSOR_EPI, PRESSOR_DOPAMINE], PRESSOR_NOREPI)
    base = {
        "map": np.clip(rng.normal(82, 9, n), 62, 110), "hr": np.clip(rng.normal(86, 12, n), 50, 120),
        "rr": np.clip(rng.normal(17, 3, n), 10, 26), "temp": rng.normal(36.9, 0.3, n),
        "spo2": np.clip(rng.normal(97, 1.5, n), 90, 100),
        "lactate": np.clip(rng.lognormal(np.log(1.1), 0.3, n), 0.5, 2.5),
        "creatinine": np.where(rng.random(n) < 0.1, rng.uniform(1.8, 3.5, n),
                               rng.lognormal(np.log(0.9), 0.25, n)),
        "platelets": np.clip(rng.normal(240, 60, n), 90, 450),
        "bilirubin": rng.lognormal(np.log(0.6), 0.4, n), "wbc": np.clip(rng.normal(8.5, 2.5, n), 3, 16),
        "pf": np.clip(rng.normal(390, 60, n), 220, 500),
        "gcs": np.where(rng.random(n) < 0.12, rng.integers(9, 15, n), 15).astype(float),
        "fever_sign": np.where(rng.random(n) < 0.85, 1.0, -0.6),
        "wbc_sign": np.where(rng.random(n) < 0.9, 1.0, -0.4),
        "urine_ml_h": np.clip(rng.normal(75, 20, n), 25, 150) * weight / 80.0,
        "maint_ml_h": np.where(rng.random(n) < 0.7, rng.choice([75.0, 100.0, 125.0], n), 0.0),
        "maint_hours": rng.uniform(12, 72, n),
        "postop_vent_h": np.where((case == NONE) & (rng.random(n) < 0.12), rng.uniform(3, 14, n), 0),
    }
    _healthy_baseline(rng, base, case == INFECTION_ONLY)
    cohort = Cohort(
        n=n, is_second=is_second, protected=protected, subject_index=subject_index, age=age,
        female=female, case=case, severity=severity, infection_h=infection_h,
        antibiotic_h=antibiotic_h, culture_h=culture_h, responder=responder,
        half_life_h=half_life, weight_kg=weight, height_cm=height,
        arterial=rng.random(n) < config.arterial_line_fraction,
        weight_lb=rng.random(n) < config.weight_lb_fraction,
        mcg_min=rng.random(n) < config.mcg_min_fraction, pressor_kind=pressor_kind,
        foley=rng.random(n) < 0.85, planned_los_h=np.zeros(n), baseline=base,
    )
    cohort.planned_los_h = _planned_los(rng, cohort)
    return cohort


def _healthy_baseline(rng: np.random.Generator, base: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """Give `rows` organ function scoring SOFA 0-1 before infection, so a mild infection stays
    below the Sepsis-3 threshold (SOFA >= 2 counts from an assumed baseline of 0)."""
    k = int(rows.sum())
    base["map"][rows] = rng.uniform(78, 95, k)
    base["pf"][rows] = rng.uniform(430, 520, k)
    base["creatinine"][rows] = rng.uniform(0.6, 1.0, k)
    base["platelets"][rows] = rng.uniform(180, 350, k)
    base["bilirubin"][rows] = rng.uniform(0.3, 0.9, k)
    base["gcs"][rows] = 15.0


def _planned_los(rng: np.random.Generator, c: Cohort) -> np.ndarray:
    """ICU length of stay (hours) if the patient survives: longer while still sick."""
    septic = c.case == SEPTIC
    los = np.where(septic, rng.lognormal(np.log(90), 0.45, c.n), rng.lognormal(np.log(40), 0.6, c.n))
    acting = np.nan_to_num(c.antibiotic_h, nan=0.0) + 4.0
    recover = acting + c.half_life_h * np.log2(np.maximum(c.severity, 0.25) / 0.25) + 12.0
    los = np.where(septic & c.responder, np.maximum(los, recover), los)
    los = np.where(septic & ~c.responder, acting + rng.uniform(80, 200, c.n), los)
    return np.clip(los, 8.0, 480.0)


def infection_stress(c: Cohort, hours: int) -> np.ndarray:
    """Latent stress x (n, T): ramps up from infection onset, decays once antibiotics act
    (responders) or keeps rising (non-responders); transient for non-infectious shock."""
    t = np.arange(hours, dtype=float)[None, :]
    onset = np.nan_to_num(c.infection_h, nan=1e9)[:, None]
    sev = c.severity[:, None]
    acting = (np.nan_to_num(c.antibiotic_h, nan=1e9) + 4.0)[:, None]
    rise = sev * np.clip((np.minimum(t, acting) - onset) / 8.0, 0.0, 1.0)
    after = np.maximum(t - acting, 0.0)
    decay = np.exp(-after * LN2 / c.half_life_h[:, None])
    x = np.where(c.responder[:, None], rise * decay, np.minimum(rise + 0.012 * after, 1.7))
    shock = c.case[:, None] == OTHER_SHOCK
    in_bump = np.maximum(t - onset - 10.0, 0.0)
    bump = np.where(t >= onset, sev * np.exp(-in_bump * LN2 / 4.0), 0.0)
    return np.where(shock, bump, x)


def simulate_course(rng: np.random.Generator, c: Cohort) -> Course:
    """Run the hourly treat-and-respond loop for all stays of a chunk at once.

    Stays are processed longest-first so the ones still in the ICU form a prefix; the working
    arrays shrink as stays end, keeping the loop's cost proportional to stay-hours.
    """
    hours = int(np.ceil(c.planned_los_h.max()))
    n = c.n
    order = np.argsort(-c.planned_los_h, kind="stable")
    x_by_hour = np.ascontiguousarray(infection_stress(c, hours)[order].T)  # (T, n) rows
    noise = rng.normal(0.0, 1.0, (5, hours, n))
    u = rng.random((5, hours, n))
    still_in = (c.planned_los_h[order][None, :] > np.arange(hours)[:, None]).sum(axis=1)
    fixed = {**{k: v[order] for k, v in c.baseline.items()}, "age": c.age[order],
             "protected": c.protected[order], "los": c.planned_los_h[order]}
    zeros = np.zeros(n)
    state = {"lact": fixed["lactate"].copy(), "creat": fixed["creatinine"].copy(),
             "plt": fixed["platelets"].copy(), "bili": fixed["bilirubin"].copy(),
             "pool": zeros.copy(), "cum_fluid": zeros.copy(), "ne_eq": zeros.copy(),
             "vaso": zeros.copy(), "vent": zeros.astype(bool), "e_map": zeros.copy(),
             "alive": np.ones(n, dtype=bool), "death_h": np.full(n, np.inf)}
    out = {k: np.zeros((hours, n)) for k in _HOURLY}
    death_h = np.full(n, np.inf)
    m = n
    for t in range(hours):
        if still_in[t] < 0.7 * m:  # drop stays that have left the ICU from the working arrays
            death_h[:m] = state["death_h"]
            m = int(still_in[t])
            state = {k: v[:m] for k, v in state.items()}
            fixed = {k: v[:m] for k, v in fixed.items()}
        state, hourly = _step(t, state, fixed, x_by_hour[t, :m], noise[:, t, :m], u[:, t, :m])
        for key, value in hourly.items():
            out[key][t, :m] = value
    death_h[:m] = state["death_h"]
    back = np.argsort(order, kind="stable")
    hourly_out = {key: np.ascontiguousarray(value.T[back]) for key, value in out.items()}
    hourly_out["x"] = infection_stress(c, hours)
    death_h = death_h[back]
    died = np.isfinite(death_h)
    los = np.where(died, np.minimum(death_h, c.planned_los_h), c.planned_los_h)
    return Course(hourly=hourly_out, los_h=los, died_icu=died & (death_h <= c.planned_los_h))


_HOURLY = ("map", "lactate", "creatinine", "platelets", "bilirubin", "ne_eq", "vaso", "bolus_ml",
           "vent", "pf", "gcs", "urine_ml")


def _step(t: int, s: dict[str, np.ndarray], b: dict[str, np.ndarray], xt: np.ndarray,
          noise: np.ndarray, u: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One hour: observe MAP, treat (bolus, titrate norepinephrine, add vasopressin), respond."""
    e_map = 0.7 * s["e_map"] + 2.5 * noise[0]
    pool, cum_fluid, ne_eq, vaso, lact = s["pool"], s["cum_fluid"], s["ne_eq"], s["vaso"], s["lact"]
    fluid_effect = 10.0 * pool / (pool + 0.5) * np.exp(-cum_fluid / 6.0)
    pressor = ne_eq + 0.1 * (vaso > 0)
    map_t = b["map"] - 38.0 * xt + fluid_effect + 35.0 * pressor / (pressor + 0.25) + e_map
    low = map_t < 65.0
    p_bolus = np.where(low, 0.55, np.where(lact > 2.5, 0.15, 0.01)) * (cum_fluid < 8.0)
    volume = np.where(u[1] < 0.7, 500.0, np.where(u[1] < 0.9, 1000.0, 250.0))
    bolus = np.where(u[0] < p_bolus, volume, 0.0)
    start = low & (ne_eq == 0) & ((cum_fluid >= 1.0) | (map_t < 55)) & (u[2] < 0.6)
    ne_eq = np.where(start, np.where(u[3] < 0.5, 0.05, 0.1), ne_eq)
    ne_eq = np.where(low & (ne_eq > 0) & ~start & (u[2] < 0.6), np.minimum(ne_eq + 0.04, 1.0), ne_eq)
    ne_eq = np.where((map_t > 75.0) & (ne_eq > 0) & (u[2] < 0.5), ne_eq - 0.03, ne_eq)
    ne_eq = np.where(ne_eq < 0.03, 0.0, ne_eq).round(2)
    vaso = np.where((vaso == 0) & (ne_eq > 0.25) & (u[3] < 0.3), 2.4, np.where(ne_eq < 0.1, 0.0, vaso))
    perfused = np.where(low, 0.4, 1.0)
    hypoperfusion = np.maximum(65.0 - map_t, 0) / 5.0
    lact = np.clip(lact + 0.5 * xt + 0.1 * hypoperfusion - 0.12 * (lact - b["lactate"]) * perfused
                   + 0.05 * noise[1], 0.3, 25.0)
    creat = np.clip(s["creat"] + 0.015 * xt + 0.005 * hypoperfusion
                    - 0.01 * (s["creat"] - b["creatinine"]) * (xt < 0.2), 0.2, 15.0)
    plt = np.clip(s["plt"] - 1.5 * xt * s["plt"] / 100.0 + 0.01 * (b["platelets"] - s["plt"]), 5, 900)
    bili = np.clip(s["bili"] + 0.01 * xt * (1 + s["bili"] / 3.0)
                   - 0.005 * (s["bili"] - b["bilirubin"]) * (xt < 0.2), 0.1, 40.0)
    gcs = np.clip(np.round(b["gcs"] - 5.0 * xt + 0.6 * noise[2]), 3, 15)
    vent = s["vent"]
    pf = np.clip(b["pf"] * (1.0 - 0.55 * xt) + 40.0 * vent + 15.0 * noise[3], 40, 600)
    recover = (xt < 0.3) & (pf > 250) & (t >= b["postop_vent_h"])
    vent = np.where(vent, ~recover, (pf < 180) | (gcs <= 8) | (t < b["postop_vent_h"]))
    urine = b["urine_ml_h"] * (1.0 - 0.75 * np.minimum(xt, 1.0)) * np.where(low, 0.6, 1.0)
    hazard_logit = (-10.5 + 3.0 * xt + 0.25 * lact + 0.04 * np.maximum(60.0 - map_t, 0)
                    + 0.03 * (b["age"] - 65.0))
    dies = s["alive"] & ~b["protected"] & (t < b["los"]) & (
        u[4] < 1.0 / (1.0 + np.exp(-hazard_logit)))
    state = {"lact": lact, "creat": creat, "plt": plt, "bili": bili, "vent": vent, "e_map": e_map,
             "pool": pool * np.exp(-LN2 / 3.0) + bolus / 1000.0, "cum_fluid": cum_fluid + bolus / 1000.0,
             "ne_eq": ne_eq, "vaso": vaso, "alive": s["alive"] & ~dies,
             "death_h": np.where(dies, t + 0.1 + 0.8 * u[3], s["death_h"])}
    hourly = {"map": map_t, "lactate": lact, "creatinine": creat, "platelets": plt,
              "bilirubin": bili, "ne_eq": ne_eq, "vaso": vaso, "bolus_ml": bolus, "vent": vent,
              "pf": pf, "gcs": gcs, "urine_ml": urine * np.exp(0.25 * noise[4])}
    return state, hourly
