"""Dosing policies for the oncology simulator, and the clinicians' dose-modification table.

A policy sees the state of every patient due for a cycle (a frame whose columns are exactly the
ETL's state columns, see `dosewise.pipelines.chemo.states`) and returns a `CycleDecision`: the
dose as a fraction of the planned dose per m2 and the delay in days before it is given. A bare
array is read as the relative dose intensity (RDI) given on schedule (delay 0); RDI 0 holds the
dose. The behaviour policy (`ClinicianPolicy`) follows `rules/chemo_dose_modifications.csv`
with noise, and reports the probability of every option it could have chosen, so each logged
action carries its known propensity and density.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from scipy.special import log_ndtr
from scipy.stats import norm, truncnorm

from dosewise.data_schemas import BadInputError

DOSE_LEVELS = (1.0, 0.8, 2.0 / 3.0)  # docetaxel 75 -> 60 -> 50 mg/m2 (Taxotere label)
DELAYS_DAYS = (0, 7, 14)
OPTIONS = tuple((lv, d) for lv in range(len(DOSE_LEVELS)) for d in range(len(DELAYS_DAYS)))


@dataclass(frozen=True)
class CycleDecision:
    """What a policy decides for each patient due for a cycle."""

    dose_fraction: np.ndarray  # delivered / planned dose per m2
    delay_days: np.ndarray  # days after the scheduled start
    option_probs: np.ndarray | None = None  # (n, len(OPTIONS)) behaviour probabilities, if known
    chosen_option: np.ndarray | None = None  # (n,) index into OPTIONS


class CyclePolicy(Protocol):
    """A dosing policy: states of the patients due now -> their decisions."""

    def __call__(self, states: pd.DataFrame, rng: np.random.Generator) -> CycleDecision | np.ndarray:
        """Decide doses for `states` (one row per patient); `rng` is the policy's own stream."""
        ...


def as_decision(out: CycleDecision | np.ndarray, n: int, planned_interval_days: float) -> CycleDecision:
    """Normalise a policy's answer; an array is the RDI, given on schedule (RDI 0 = hold)."""
    if isinstance(out, CycleDecision):
        decision = out
    else:
        rdi = np.asarray(out, dtype=np.float64).reshape(-1)
        decision = CycleDecision(dose_fraction=rdi, delay_days=np.zeros(len(rdi)))
    if len(decision.dose_fraction) != n or len(decision.delay_days) != n:
        raise BadInputError(
            f"A policy must return one decision per patient ({n}). Got {len(decision.dose_fraction)}.",
            "Return an array of RDI values, or a CycleDecision, with one entry per state row.",
        )
    dose = np.asarray(decision.dose_fraction, dtype=np.float64)
    delay = np.asarray(decision.delay_days, dtype=np.float64)
    finite = np.isfinite(dose).all() and np.isfinite(delay).all()
    if not (finite and (dose >= 0).all() and (delay >= 0).all()):
        raise BadInputError(
            "Policy doses must be finite and >= 0 and delays finite and >= 0. "
            f"Got dose range [{np.nanmin(dose):g}, {np.nanmax(dose):g}].",
            "Clip the policy's output to the supported dose range (e.g. RDI in [0, 1.25]).",
        )
    return CycleDecision(dose, np.round(delay), decision.option_probs, decision.chosen_option)


@dataclass(frozen=True)
class ConstantPolicy:
    """Always the same dose fraction on schedule ("always full dose" is `ConstantPolicy(1.0)`)."""

    dose_fraction: float = 1.0

    def __call__(self, states: pd.DataFrame, rng: np.random.Generator) -> CycleDecision:
        """The same decision for every patient."""
        n = len(states)
        return CycleDecision(np.full(n, float(self.dose_fraction)), np.zeros(n))


def policy_from_function(fn: Callable[[pd.DataFrame], np.ndarray]) -> CyclePolicy:
    """Wrap a deterministic `states -> RDI` function (for example a trained policy) as a policy."""

    def policy(states: pd.DataFrame, rng: np.random.Generator) -> CycleDecision | np.ndarray:
        return np.asarray(fn(states), dtype=np.float64)

    return policy


@dataclass(frozen=True)
class ClinicianPolicy:
    """The dose-modification table of `rules/chemo_dose_modifications.csv`, with noise.

    Delay 7 days when ANC < 1.5e9/L at the scheduled start and 14 when < 1.0e9/L; one level
    down (75 -> 60 -> 50 mg/m2) after grade 4 neutropenia, febrile neutropenia, grade 4
    thrombocytopenia, or grade >= 3 diarrhoea, stomatitis or neuropathy in the previous cycle;
    no re-escalation. With probability `deviation` another option is chosen uniformly. The
    delivered dose is log-normal around the level (`dose_noise_sd`).
    """

    deviation: float = 0.10
    dose_noise_sd: float = 0.03

    def intended_option(self, states: pd.DataFrame) -> np.ndarray:
        """Index into OPTIONS that the table prescribes for each row."""
        prev = states["prev_dose_fraction"].to_numpy(np.float64)
        first = states["cycle_number"].to_numpy() <= 1
        level = np.argmin(np.abs(prev[:, None] - np.array(DOSE_LEVELS)[None, :]), axis=1)
        level = np.where(first, 0, level)
        reduce = (
            (states["prev_grade_neutropenia"].to_numpy() >= 4)
            | (states["prev_febrile_neutropenia"].to_numpy() >= 1)
            | (states["prev_grade_thrombocytopenia"].to_numpy() >= 4)
            | (states["prev_grade_diarrhoea"].to_numpy() >= 3)
            | (states["prev_grade_mucositis"].to_numpy() >= 3)
            | (states["prev_grade_neuropathy"].to_numpy() >= 3)
        ) & ~first
        level = np.minimum(level + reduce.astype(int), len(DOSE_LEVELS) - 1)
        anc = states["anc_1e9_per_l"].to_numpy(np.float64)
        delay = np.where(anc < 1.0, 2, np.where(anc < 1.5, 1, 0))
        return np.asarray(level * len(DELAYS_DAYS) + delay)

    def option_probabilities(self, states: pd.DataFrame) -> np.ndarray:
        """(n, len(OPTIONS)) probability of each option: 1 - deviation on the table's choice.

        Cycle 1 is always given on its date (a delay of cycle 1 is invisible in records), so there
        each delayed option's mass folds into the same dose level on time: the logged probabilities
        and densities then describe the doses actually given.
        """
        intended = self.intended_option(states)
        k = len(OPTIONS)
        probs = np.full((len(states), k), self.deviation / (k - 1))
        probs[np.arange(len(states)), intended] = 1.0 - self.deviation
        first = states["cycle_number"].to_numpy() <= 1
        if first.any():
            per_level = probs[first].reshape(-1, len(DOSE_LEVELS), len(DELAYS_DAYS)).sum(axis=2)
            folded = np.zeros((int(first.sum()), len(DOSE_LEVELS), len(DELAYS_DAYS)))
            folded[:, :, 0] = per_level
            probs[first] = folded.reshape(-1, k)
        return probs

    def __call__(self, states: pd.DataFrame, rng: np.random.Generator) -> CycleDecision:
        """Draw each patient's option and delivered dose."""
        probs = self.option_probabilities(states)
        u = rng.random(len(states))
        chosen = np.minimum((np.cumsum(probs, axis=1) < u[:, None]).sum(axis=1), len(OPTIONS) - 1)
        levels = np.array([DOSE_LEVELS[OPTIONS[o][0]] for o in chosen])
        delays = np.array([DELAYS_DAYS[OPTIONS[o][1]] for o in chosen], dtype=np.float64)
        dose = levels * np.exp(self.dose_noise_sd * rng.standard_normal(len(states)))
        return CycleDecision(dose, delays, probs, chosen)


@dataclass(frozen=True)
class DeliveredAsClinicians:
    """A target RDI per state, delivered the way the clinicians deliver that RDI.

    RDI merges two decisions (dose and delay): 0.75 is full dose a week late, or 75 % on time,
    and the simulator treats them differently. Off-policy estimates on the RDI action value a
    recommended RDI as the clinicians' records give it, so the truth for comparing with them
    does the same: in state s, target RDI r is given through option o with probability
    proportional to p_o(s) x f_o(r) (the clinicians' option probability times its RDI density),
    the dose scaled so that the RDI is exactly r. RDI 0 holds the dose.
    """

    rdi: Callable[[pd.DataFrame], np.ndarray]
    clinicians: ClinicianPolicy = ClinicianPolicy()
    planned_interval_days: float = 21.0

    def __call__(self, states: pd.DataFrame, rng: np.random.Generator) -> CycleDecision:
        """Each patient's option drawn given the target RDI; dose = r x actual / planned interval."""
        target = np.clip(np.asarray(self.rdi(states), dtype=np.float64).reshape(-1), 0.0, None)
        centres = option_rdi(self.planned_interval_days)
        sd = self.clinicians.dose_noise_sd
        with np.errstate(divide="ignore"):
            log_w = np.log(self.clinicians.option_probabilities(states)) + norm.logpdf(
                (np.log(np.maximum(target, 1e-12))[:, None] - np.log(centres)[None, :]) / sd)
        w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        u = rng.random(len(target))
        chosen = np.minimum((np.cumsum(w, axis=1) < u[:, None]).sum(axis=1), len(OPTIONS) - 1)
        delays = np.array([DELAYS_DAYS[OPTIONS[o][1]] for o in chosen], dtype=np.float64)
        delays = np.where(target > 0, delays, 0.0)
        dose = target * (self.planned_interval_days + delays) / self.planned_interval_days
        return CycleDecision(dose, delays)


@dataclass(frozen=True)
class BinDeliveredAsClinicians:
    """A choice among the RDI bins per state, each chosen bin delivered the way the clinicians
    deliver an RDI in that bin in that state: the estimand of discrete-action OPE on the bins.

    Importance ratios on the bins (pi(bin | s) / mu(bin | s)) leave what happens inside a bin to
    the records: the estimate is the value of choosing bins by `bin_probs`, each bin's dose and
    delay as the clinicians give them given that their RDI falls in it. So the truth does the same:
    in state s a bin b is drawn from `bin_probs(s)` (rows of (n, len(edges) + 1) probabilities,
    bins as the trajectory contract: bin 0 is RDI 0, bin j is (e[j-1], e[j]], the last is above
    e[-1]); then option o with probability proportional to p_o(s) x P(RDI in b | o), and the
    log-normal dose noise of that option truncated to b. That is the clinicians' joint
    distribution of (option, dose) conditional on the bin, computed from their known policy, not
    estimated. Bin 0 (RDI 0, which the clinicians never choose) holds the dose.
    """

    bin_probs: Callable[[pd.DataFrame], np.ndarray]
    edges: tuple[float, ...] = (0.0, 0.55, 0.7, 0.9)
    clinicians: ClinicianPolicy = ClinicianPolicy()
    planned_interval_days: float = 21.0

    def __post_init__(self) -> None:
        e = np.asarray(self.edges, dtype=np.float64)
        if len(e) < 2 or e[0] != 0.0 or np.any(np.diff(e) <= 0):
            raise BadInputError(
                "RDI bin edges must start at 0 and increase strictly, with at least two. "
                f"Got {list(self.edges)}.",
                "Pass the trajectories manifest's action_bin_edges['rdi_fraction'].",
            )

    def __call__(self, states: pd.DataFrame, rng: np.random.Generator) -> CycleDecision:
        """Each patient's bin drawn from `bin_probs`, then option and dose as the clinicians give that bin."""
        n = len(states)
        probs = self._checked_probs(states)
        chosen_bin = _draw_rows(probs, rng.random(n))
        u_option, u_noise = rng.random(n), rng.random(n)
        dose, delays = np.zeros(n), np.zeros(n)
        given = np.flatnonzero(chosen_bin > 0)
        if given.size:
            options = self.clinicians.option_probabilities(states.iloc[given])
            z_low, z_high = self._noise_limits(chosen_bin[given])
            with np.errstate(divide="ignore"):
                log_w = np.log(options) + _log_normal_mass(z_low, z_high)
            if not np.isfinite(log_w.max(axis=1)).all():
                raise BadInputError(
                    "A chosen RDI bin has no clinicians' option with any probability in its state.",
                    "Check that the edges are the trajectories' and the clinicians the behaviour policy.",
                )
            w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
            option = _draw_rows(w / w.sum(axis=1, keepdims=True), u_option[given])
            rows = np.arange(given.size)
            z = truncnorm.ppf(u_noise[given], z_low[rows, option], z_high[rows, option])
            level = np.array([DOSE_LEVELS[OPTIONS[o][0]] for o in option])
            dose[given] = level * np.exp(self.clinicians.dose_noise_sd * z)
            delays[given] = np.array([DELAYS_DAYS[OPTIONS[o][1]] for o in option], dtype=np.float64)
        return CycleDecision(dose, delays)

    def _checked_probs(self, states: pd.DataFrame) -> np.ndarray:
        """`bin_probs(states)` as (n, bins) probabilities, or an error that says what was wrong."""
        k = len(self.edges) + 1
        probs = np.asarray(self.bin_probs(states), dtype=np.float64)
        if probs.shape != (len(states), k):
            raise BadInputError(
                f"bin_probs must return ({len(states)}, {k}) probabilities (one column per RDI bin of "
                f"edges {list(self.edges)}). Got shape {probs.shape}.",
                "Use the policy's action_probabilities on trajectories with these bin edges.",
            )
        if not (np.isfinite(probs).all() and (probs >= 0).all() and np.allclose(probs.sum(axis=1), 1.0)):
            raise BadInputError(
                "bin_probs must return finite probabilities >= 0 that sum to 1 in every row.",
                "Return action_probabilities(states, epsilon), not Q-values or logits.",
            )
        return probs

    def _noise_limits(self, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, options) standard-normal limits of the dose noise that put each option's RDI in
        the row's bin: (log e[b-1] - log centre) / sd and (log e[b] - log centre) / sd."""
        bounds = np.concatenate([np.asarray(self.edges, dtype=np.float64), [np.inf]])
        log_centres = np.log(option_rdi(self.planned_interval_days))
        sd = self.clinicians.dose_noise_sd
        with np.errstate(divide="ignore"):
            low = np.log(bounds[bins - 1])[:, None]
            high = np.log(bounds[bins])[:, None]
        return (low - log_centres[None, :]) / sd, (high - log_centres[None, :]) / sd


def _draw_rows(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One column index per row of `probs`, by inverse CDF of the uniform draws `u`."""
    return np.asarray(np.minimum((np.cumsum(probs, axis=1) < u[:, None]).sum(axis=1), probs.shape[1] - 1))


def _log_normal_mass(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """log(Phi(high) - Phi(low)), accurate in either tail (a bin far from an option's centre)."""
    flip = low > 0  # upper tail: Phi(h) - Phi(l) = Phi(-l) - Phi(-h)
    a, b = np.where(flip, -high, low), np.where(flip, -low, high)
    log_b = log_ndtr(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = log_b + np.log1p(-np.exp(log_ndtr(a) - log_b))
    return np.asarray(np.where(b > a, out, -np.inf), dtype=np.float64)


def option_rdi(planned_interval_days: float) -> np.ndarray:
    """RDI at the centre of each option: level x planned / (planned + delay)."""
    return np.array(
        [
            DOSE_LEVELS[lv] * planned_interval_days / (planned_interval_days + DELAYS_DAYS[d])
            for lv, d in OPTIONS
        ]
    )


def rdi_density(rdi: np.ndarray, option_probs: np.ndarray, centres: np.ndarray, sd: float) -> np.ndarray:
    """Behaviour density of the logged RDI: a mixture of log-normals, one per option."""
    r = np.maximum(np.asarray(rdi, dtype=np.float64), 1e-12)[:, None]
    dens = norm.pdf((np.log(r) - np.log(centres)[None, :]) / sd) / (sd * r)
    return np.asarray((option_probs * dens).sum(axis=1))


def rdi_bin_probabilities(
    option_probs: np.ndarray, centres: np.ndarray, sd: float, edges: list[float]
) -> np.ndarray:
    """(n, len(edges) + 1) behaviour probability of each RDI bin (bin 0: RDI == 0, none here).

    Bins follow the trajectory contract: bin 0 is RDI 0, bin j is (e[j-1], e[j]], the last is
    above e[-1]; `edges` is the manifest's list starting with 0.
    """
    inner = np.log(np.maximum(np.asarray(edges[1:], dtype=np.float64), 1e-300))
    cdf = norm.cdf((inner[None, :] - np.log(centres)[:, None]) / sd)  # (options, inner)
    cdf = np.concatenate([np.zeros((len(centres), 1)), cdf, np.ones((len(centres), 1))], axis=1)
    per_option = np.diff(cdf, axis=1)  # (options, bins - 1): (0, e1], (e1, e2], ... above
    per_option = np.concatenate([np.zeros((len(centres), 1)), per_option], axis=1)
    # a sum over the options row by row, not a BLAS product: its last bit would depend on the row's
    # position in the matrix, so a patient's probability would change with the batch it is in
    return np.asarray((option_probs[:, :, None] * per_option[None, :, :]).sum(axis=1))
