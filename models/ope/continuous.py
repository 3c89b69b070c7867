"""Continuous-action OPE inputs: the behaviour dose density, the kernel-smoothed target and the
per-step density ratios every estimator (IS ... WDR) consumes.

A deterministic dose policy pi(s) has no density, so its target is smoothed with a Gaussian kernel
of bandwidth h around pi(s) (Kallus & Zhou 2018, "Policy evaluation and optimization with continuous
treatments", AISTATS): ratio_t = K_h(a_t - pi(s_t)) / mu(a_t | s_t). The kernel is renormalised on
doses > 0, and a zero dose (hold) is a point mass on both sides, so "always hold" weighs logged
holds by 1 / P(hold | s). Logged doses where the clinicians' density puts almost no mass (less than
`behaviour.min_prob` within +-h) would give unbounded ratios: their density is raised to that floor,
counted and reported, as for discrete probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import norm

from dosewise.data_schemas import BadInputError, TrajectoryDatasetInfo
from dosewise.data_schemas import columns as c
from dosewise.data_schemas.ope import DensityCalibration

from ..behaviour_density import BehaviourDoseDensity
from .calibration import CalibrationResult, calibration_metrics
from .config import OpeConfig

COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95)
LOGGED_DENSITY = c.BEHAVIOUR_DENSITY  # known density of the logged dose (simulated cohorts)


def resolve_action_space(policy: Any, info: TrajectoryDatasetInfo, config: OpeConfig
                         ) -> Literal["discrete", "continuous"]:
    """Which OPE this policy and dataset get; a continuous policy on discrete data (no dose columns),
    or a discrete policy asked for continuous OPE, is an error that says which."""
    own = getattr(policy, "action_space", "discrete")
    mode = own if config.action_space == "auto" else config.action_space
    if mode == "continuous" and own != "continuous":
        raise BadInputError(
            f"Policy `{policy.name}` is discrete (it picks one of {policy.n_actions} actions), but "
            "continuous-action OPE was asked for (action_space = continuous).",
            "Use action_space = auto or discrete for a discrete policy, or evaluate a continuous one "
            "(cql, iql, td3_plus_bc, or constant:DOSE).",
        )
    if mode == "continuous" and not info.continuous_action_columns:
        raise BadInputError(
            f"Policy `{policy.name}` is continuous (it recommends doses), but these trajectories are "
            "discrete: their manifest has no dose columns (continuous_action_columns is empty).",
            "Evaluate a discrete policy here (discrete_cql, double_dqn, discrete_bcq or constant:K), or "
            "use trajectories with dose columns.",
        )
    return "continuous" if mode == "continuous" else "discrete"


def bandwidths(config: OpeConfig, fit_rows: pd.DataFrame, doses: list[str]) -> np.ndarray:
    """(k,) kernel bandwidth per dose column: configured, else `bandwidth_share` x the sd of the
    column's non-zero logged doses on the fit split."""
    out = []
    for col in doses:
        if col in config.continuous.bandwidth:
            out.append(float(config.continuous.bandwidth[col]))
            continue
        values = fit_rows[col].to_numpy(np.float64)
        sd = float(np.std(values[values > 0])) if np.any(values > 0) else 0.0
        out.append(config.continuous.bandwidth_share * sd if sd > 0 else 1e-3)
    unknown = [k for k in config.continuous.bandwidth if k not in doses]
    if unknown:
        raise BadInputError(f"continuous.bandwidth names {unknown}, which are not dose columns {doses}.",
                            "Use the dose column names of the trajectories manifest.")
    return np.asarray(out)


def kernel_density(logged: np.ndarray, centre: np.ndarray, bandwidth: np.ndarray) -> np.ndarray:
    """(n,) density of the logged doses under the target smoothed around `centre` (both (n, k)):
    per column a point mass where the centre is 0, else a Gaussian kernel renormalised on doses > 0.

    >>> float(kernel_density(np.array([[0.0]]), np.array([[0.0]]), np.array([0.1]))[0])
    1.0
    """
    hold = centre <= 0
    z = (logged - centre) / bandwidth
    smooth = norm.pdf(z) / bandwidth / np.maximum(norm.cdf(centre / bandwidth), 1e-12)
    per_col = np.where(hold, (logged <= 0).astype(np.float64), np.where(logged > 0, smooth, 0.0))
    out: np.ndarray = per_col.prod(axis=1)
    return out


@dataclass(frozen=True)
class DoseKernel:
    """The target's smoothing kernel: per dose column its bandwidth and, for a proportional kernel,
    the reference dose at which the bandwidth is the kernel's sd (`continuous.kernel_scale`)."""

    bandwidth: np.ndarray  # (k,)
    reference: np.ndarray | None = None  # (k,) median non-zero logged dose; None: absolute

    def density(self, logged: np.ndarray, centre: np.ndarray) -> np.ndarray:
        """(n,) density of the logged doses under the target smoothed around `centre` (both (n, k))."""
        if self.reference is None:
            return kernel_density(logged, centre, self.bandwidth)
        widths = self.bandwidth * np.maximum(centre, 0.0) / self.reference
        return kernel_density(logged, centre, np.where(centre > 0, np.maximum(widths, 1e-6), self.bandwidth))


def dose_kernel(config: OpeConfig, fit_rows: pd.DataFrame, doses: list[str]) -> DoseKernel:
    """The kernel of `config.continuous` on these fit rows: bandwidths, and the reference doses of a
    proportional kernel."""
    bandwidth = bandwidths(config, fit_rows, doses)
    if config.continuous.kernel_scale == "absolute":
        return DoseKernel(bandwidth)
    reference = []
    for col in doses:
        values = fit_rows[col].to_numpy(np.float64)
        reference.append(float(np.median(values[values > 0])) if np.any(values > 0) else 1.0)
    return DoseKernel(bandwidth, np.asarray(reference))


@dataclass
class DoseBehaviour:
    """The clinicians' dose density on the evaluated rows and how well it is calibrated."""

    model: BehaviourDoseDensity
    logged: np.ndarray  # (rows,) density of each logged dose vector (after the floor)
    source: str  # logged_behaviour_density (known, simulators) | fitted_density
    bin_probabilities: np.ndarray | None  # (rows, A) its integral over the dose bins, if it has edges
    calibration: CalibrationResult
    density_calibration: DensityCalibration
    n_floored: int
    warnings: list[str] = field(default_factory=list)


def fit_dose_density(fit_rows: pd.DataFrame, features: list[str], info: TrajectoryDatasetInfo,
                     config: OpeConfig) -> BehaviourDoseDensity:
    """The hurdle log-normal dose density on (at most `max_fit_rows`, seeded) fit rows."""
    if len(fit_rows) > config.behaviour.max_fit_rows:
        fit_rows = fit_rows.sample(n=config.behaviour.max_fit_rows, random_state=config.seed)
    doses = list(info.continuous_action_columns)
    edges = [list(info.action_bin_edges[d]) for d in doses] if all(
        d in info.action_bin_edges for d in doses) else None
    model = BehaviourDoseDensity(bin_edges=edges)
    return model.fit(fit_rows[features], fit_rows[doses].to_numpy(np.float64))


def pit_calibration(model: BehaviourDoseDensity, states: pd.DataFrame, doses: np.ndarray, bins: int,
                    seed: int, bandwidth: dict[str, float]) -> DensityCalibration:
    """Randomised PIT of every logged dose (u ~ U(F(a-), F(a)) at the zero point mass), its histogram,
    KS distance from uniform and the coverage of the central predictive intervals."""
    upper = model.dose_cdf(states, doses)
    lower = np.where(doses > 0, upper, 0.0)  # F(a-) = F(a) off the point mass, 0 at a zero dose
    rng = np.random.default_rng(seed)
    u = (lower + rng.random(upper.shape) * (upper - lower)).ravel()
    hist = np.histogram(u, bins=bins, range=(0.0, 1.0))[0] / max(len(u), 1)
    ordered = np.sort(u)
    grid = np.arange(1, len(u) + 1) / max(len(u), 1)
    ks = float(np.max(np.abs(ordered - grid))) if len(u) else 0.0
    coverage = {f"{level:g}": float(np.mean((u >= (1 - level) / 2) & (u <= (1 + level) / 2)))
                for level in COVERAGE_LEVELS}
    mean_log = float(np.mean(model.log_density(states, doses)))
    return DensityCalibration(pit_histogram=hist.tolist(), pit_ks=min(ks, 1.0), interval_coverage=coverage,
                              mean_log_density=mean_log, n_doses=int(u.size), bandwidth=bandwidth)


def _bin_actions(doses: np.ndarray, edges: list[list[float]], info: TrajectoryDatasetInfo) -> np.ndarray:
    """(n,) action index of dose vectors: bin 0 = zero, bin j = (e[j-1], e[j]] per column, row-major."""
    sizes = [len(e) + 1 for e in edges]
    per_col = [np.searchsorted(np.asarray(e), doses[:, j], side="left") for j, e in enumerate(edges)]
    strides = [int(np.prod(sizes[j + 1:])) for j in range(len(sizes))]
    return np.clip(sum(b * s for b, s in zip(per_col, strides, strict=True)), 0, info.n_actions - 1)


def dose_behaviour(model: BehaviourDoseDensity, rows: pd.DataFrame, features: list[str],
                   info: TrajectoryDatasetInfo, config: OpeConfig, bandwidth: np.ndarray) -> DoseBehaviour:
    """Density of the logged doses: the known `behaviour_density` column where the data has one
    (and `behaviour.use_logged_prob`), else the fitted density; floored where its mass within +-h
    is below `behaviour.min_prob`. Plus the fitted density's PIT check and bin probabilities."""
    doses_cols = list(info.continuous_action_columns)
    states, doses = rows[features], rows[doses_cols].to_numpy(np.float64)
    width = np.where(doses > 0, 2.0 * bandwidth, 1.0).prod(axis=1)  # window volume of the positive doses
    known = config.behaviour.use_logged_prob and LOGGED_DENSITY in rows.columns and bool(
        rows[LOGGED_DENSITY].notna().all())
    if known:
        density, source = rows[LOGGED_DENSITY].to_numpy(np.float64), "logged_behaviour_density"
        mass = density * width
    else:
        density, source = np.exp(model.log_density(states, doses)), "fitted_density"
        mass = model.window_mass(states, doses, bandwidth)
    floor = config.behaviour.min_prob
    low = mass < floor if floor > 0 else density <= 0
    warnings = []
    if floor > 0 and low.any():
        density = np.where(low, np.maximum(density, floor / width), density)
        warnings.append(
            f"{int(low.sum())} of {len(low)} logged doses have behaviour density mass below {floor:g} "
            f"within +-{', '.join(f'{h:.3g}' for h in bandwidth)} of the dose: the density puts (near) zero "
            "mass on them; it was raised to that floor, which clips their importance ratios "
            f"(recorded as n_floored = {int(low.sum())}).")
    elif low.any():
        raise BadInputError(
            f"{int(low.sum())} logged doses have behaviour density 0, so their importance ratios are "
            "undefined.", "Set `behaviour.min_prob` (e.g. --set behaviour.min_prob=0.001) to floor them.")
    named = dict(zip(doses_cols, (float(h) for h in bandwidth), strict=True))
    pit = pit_calibration(model, states, doses, config.continuous.pit_bins, config.seed, named)
    bins = None
    if model.bin_edges is not None:
        try:
            bins = model.action_probabilities(states, info.n_actions)
        except BadInputError as exc:
            warnings.append(f"The dose density's bin probabilities are unavailable ({exc.message}); "
                            "calibration and support use the dose density only.")
    if bins is not None:
        calibration = calibration_metrics(bins, rows[c.ACTION].to_numpy(np.int64))
    else:
        calibration = CalibrationResult(log_loss=-pit.mean_log_density, ece=pit.pit_ks,
                                        accuracy=pit.interval_coverage["0.9"],
                                        reliability=pd.DataFrame(columns=["bin", "confidence", "accuracy",
                                                                          "count"]))
    return DoseBehaviour(model, density, source, bins, calibration, pit, int(low.sum()) if floor > 0 else 0,
                         warnings)


def recommended_support(policy_doses: np.ndarray, behaviour: DoseBehaviour, rows: pd.DataFrame,
                        features: list[str], info: TrajectoryDatasetInfo, bandwidth: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(recommended action bin, clinicians' probability of it) per row: the bin probability when the
    manifest has bin edges (as for discrete policies), else the density's mass within +-h."""
    model = behaviour.model
    if behaviour.bin_probabilities is not None and model.bin_edges is not None:
        actions = _bin_actions(policy_doses, model.bin_edges, info)
        return actions, behaviour.bin_probabilities[np.arange(len(actions)), actions]
    mass = model.window_mass(rows[features], policy_doses, bandwidth)
    return np.zeros(len(rows), dtype=np.int64), mass
