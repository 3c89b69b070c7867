"""Episode-level bootstrap intervals (percentile and BCa), vectorised as counts @ terms.

Each resample is a vector of episode counts; all estimators share the same resamples, and a
chunk of resamples is one matrix product with the per-episode terms (`RatioTerms`). The 5th
percentile is reported as the one-sided "95 % lower bound", as AI Clinician did
(Komorowski et al. 2018). BCa follows Efron 1987 with the jackknife acceleration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

from dosewise.data_schemas.console import progress

from .terms import RatioTerms


@dataclass(frozen=True)
class BootstrapResult:
    """Point value, bootstrap replicates and the intervals derived from them."""

    value: float
    replicates: np.ndarray
    ci_low: float
    ci_high: float
    lower_bound_95: float
    bca_low: float | None
    bca_high: float | None


def resample_counts(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, n) counts of each episode in `size` bootstrap resamples of n episodes."""
    picks = rng.integers(0, n, size=(size, n), dtype=np.int32)
    counts = np.empty((size, n))
    for row in range(size):  # row-wise bincount: small outputs that stay in cache
        counts[row] = np.bincount(picks[row], minlength=n)
    return counts


def _stacked(terms: Mapping[str, RatioTerms]) -> tuple[np.ndarray, dict[str, tuple[slice, slice | None]]]:
    """All estimators' numerator and denominator columns side by side, so that one matrix
    product per chunk serves every estimator; returns the matrix and each one's column slices."""
    blocks, where, at = [], {}, 0
    for name, item in terms.items():
        k = item.numer.shape[1]
        blocks.append(item.numer)
        numer = slice(at, at + k)
        at += k
        denom = None
        if item.denom is not None:
            blocks.append(item.denom)
            denom = slice(at, at + k)
            at += k
        where[name] = (numer, denom)
    return np.concatenate(blocks, axis=1), where


def bootstrap_replicates(
    terms: Mapping[str, RatioTerms],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    chunk_size: int = 250,
    show_progress: bool = False,
) -> dict[str, np.ndarray]:
    """(B,) replicates per estimator; every estimator sees the same resampled episodes."""
    sizes = {t.n_episodes for t in terms.values()}
    if len(sizes) != 1:
        raise ValueError(f"all estimators must share the same episodes, got sizes {sorted(sizes)}")
    n = sizes.pop()
    stacked, where = _stacked(terms)
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {name: [] for name in terms}
    starts = range(0, n_resamples, chunk_size)
    for start in progress(starts, desc="bootstrap", total=len(starts), show=show_progress):
        counts = resample_counts(n, min(chunk_size, n_resamples - start), rng)
        sums = counts @ stacked
        for name, item in terms.items():
            numer, denom = where[name]
            denom_sums = sums[:, denom] if denom is not None else np.full((len(sums), 1), float(n))
            out[name].append(item.combine(sums[:, numer], denom_sums))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def bca_interval(
    replicates: np.ndarray, value: float, jackknife: np.ndarray, confidence: float
) -> tuple[float, float] | None:
    """Bias-corrected and accelerated interval; None when the replicates are degenerate."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size < 2 or np.ptp(finite) == 0:
        return None
    below = (np.sum(finite < value) + 0.5 * np.sum(finite == value)) / finite.size
    below = float(np.clip(below, 1.0 / (finite.size + 1), 1.0 - 1.0 / (finite.size + 1)))
    z0 = norm.ppf(below)
    diffs = jackknife.mean() - jackknife
    scale = np.max(np.abs(diffs)) if diffs.size else 0.0
    diffs = diffs / scale if scale > 0 else diffs  # the acceleration is scale-free; tiny values underflow
    spread = np.sum(diffs**2)
    accel = float(np.sum(diffs**3) / (6.0 * spread**1.5)) if spread > 0 else 0.0
    tail = (1.0 - confidence) / 2.0
    z = norm.ppf([tail, 1.0 - tail])
    adjusted = norm.cdf(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
    if not np.all(np.isfinite(adjusted)):
        return None
    low, high = np.quantile(finite, adjusted)
    return float(low), float(high)


def bootstrap_intervals(
    terms: Mapping[str, RatioTerms],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    bca: bool = True,
    show_progress: bool = False,
) -> dict[str, BootstrapResult]:
    """Percentile (and BCa) intervals plus the 5th-percentile lower bound for each estimator."""
    replicates = bootstrap_replicates(
        terms, n_resamples=n_resamples, seed=seed, show_progress=show_progress
    )
    tail = (1.0 - confidence) / 2.0
    results = {}
    for name, item in terms.items():
        reps = replicates[name]
        value = item.value()
        low, high = np.quantile(reps, [tail, 1.0 - tail])
        bca_pair = bca_interval(reps, value, item.jackknife(), confidence) if bca else None
        results[name] = BootstrapResult(
            value=value,
            replicates=reps,
            ci_low=float(low),
            ci_high=float(high),
            lower_bound_95=float(np.quantile(reps, 0.05)),
            bca_low=None if bca_pair is None else bca_pair[0],
            bca_high=None if bca_pair is None else bca_pair[1],
        )
    return results


MAD_TO_SD = 1.4826  # 1 / Phi^-1(3/4): the MAD of a normal sample times this estimates its sd


def refit_spread(values: np.ndarray | list[float]) -> float:
    """Robust spread of the FQE refits' values: 1.4826 x the median absolute deviation from their median.

    One refit that diverges (a Q-function that blew up on an unlucky resample) moves the standard
    deviation without bound but the MAD hardly at all, so the interval stays informative."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size < 2:
        return 0.0
    return float(MAD_TO_SD * np.median(np.abs(finite - np.median(finite))))


def widen_for_refits(result: BootstrapResult, spread: float, confidence: float, n_refits: int
                     ) -> BootstrapResult:
    """Add the spread of refitted Q-functions to an interval fitted around one of them.

    Each half-width h becomes sqrt(h**2 + (q * spread)**2): the variances of the episode resampling
    and of refitting add (law of total variance; FQE is fitted on other episodes). q is Student's t
    quantile with n_refits - 1 degrees of freedom, since the spread itself rests on few refits."""
    if n_refits < 2:
        raise ValueError(f"n_refits must be at least 2 to give a spread. Got {n_refits}.")
    dof = n_refits - 1
    q_two, q_one = float(student_t.ppf(0.5 + confidence / 2.0, dof)), float(student_t.ppf(0.95, dof))

    def end(at: float, sign: float, quantile: float) -> float:
        half = max(sign * (at - result.value), 0.0)
        return float(result.value + sign * np.hypot(half, quantile * spread))

    return replace(result, ci_low=end(result.ci_low, -1.0, q_two), ci_high=end(result.ci_high, 1.0, q_two),
                   lower_bound_95=end(result.lower_bound_95, -1.0, q_one),
                   bca_low=None if result.bca_low is None else end(result.bca_low, -1.0, q_two),
                   bca_high=None if result.bca_high is None else end(result.bca_high, 1.0, q_two))


def refit_paired_interval(
    estimate: tuple[float, float], low_starts: np.ndarray, high_starts: np.ndarray, *, n_resamples: int,
    seed: int, confidence: float, chunk_size: int = 250,
) -> BootstrapResult:
    """FQE's interval from the joint bootstrap of fit and evaluated episodes (Hao et al. 2021).

    `estimate` is the main fit's value with what the data cannot tell (never-seen states, loops
    never left) at the low / high end of the return range; the point value is their midpoint.
    `low_starts` / `high_starts` are (K, n): V at the n evaluated episodes' first states under each
    of K refits on fit-episode resamples, valued the same two ways. Replicate b pairs an
    evaluated-episode resample with refit b mod K, so it carries both sources of error.

    The interval is the basic (reverse percentile) bootstrap, 2 x estimate minus the replicates'
    upper / lower quantile: a resample holds fewer distinct episodes than the data, so its refits
    see more never-logged pairs and drift the way the estimate's own bias goes; the basic interval
    reflects that drift instead of doubling it (percentile vs basic coverage: bench/ope_coverage.py
    --fqe-intervals). Low ends use the low values, high ends the high ones."""
    n_refits, n = low_starts.shape
    if n_refits < 2:
        raise ValueError(f"the paired interval needs at least 2 refits. Got {n_refits}.")
    rng = np.random.default_rng(seed)
    lows, highs = [], []
    for start in range(0, n_resamples, chunk_size):
        size = min(chunk_size, n_resamples - start)
        counts = resample_counts(n, size, rng)
        refit = (start + np.arange(size)) % n_refits
        lows.append(np.einsum("bn,bn->b", counts, low_starts[refit]) / n)
        highs.append(np.einsum("bn,bn->b", counts, high_starts[refit]) / n)
    low_reps, high_reps = np.concatenate(lows), np.concatenate(highs)
    est_low, est_high = estimate
    value = 0.5 * (est_low + est_high)
    tail = (1.0 - confidence) / 2.0
    return BootstrapResult(
        value=value, replicates=0.5 * (low_reps + high_reps),
        ci_low=float(min(2 * est_low - np.quantile(low_reps, 1 - tail), est_low)),
        ci_high=float(max(2 * est_high - np.quantile(high_reps, tail), est_high)),
        lower_bound_95=float(min(2 * est_low - np.quantile(low_reps, 0.95), est_low)),
        bca_low=None, bca_high=None)
