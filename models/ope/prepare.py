"""The behaviour model and every target's estimator terms, for discrete or continuous actions.

`prepare_discrete`: a calibrated classifier (or the logged propensities) and action-probability
ratios, FQE over the action bins, support bounds. `prepare_continuous`: the dose density (checked by
PIT), density ratios against the kernel-smoothed target and continuous FQE. Both return `Prepared`,
which `evaluate_policy` turns into intervals, diagnostics and the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from dosewise.data_schemas import TrajectoryDatasetInfo
from dosewise.data_schemas import columns as c
from dosewise.data_schemas.ope import DensityCalibration

from ..datasets import LoadedTrajectories
from .behaviour_cache import BehaviourFit, fit_or_load_behaviour
from .bounds import support_bound_terms, value_range
from .calibration import CalibrationResult
from .config import OpeConfig
from .continuous import dose_behaviour, dose_kernel, fit_dose_density, recommended_support
from .episodes import EpisodeLayout, discounted_returns
from .fqe_method import FqeChoice, choose_fqe, fit_tabular_target
from .importance_sampling import importance_weights
from .inputs import behaviour_probabilities, fit_behaviour_model
from .targets import CLINICIANS, QPair, TargetTerms, continuous_target_terms, needs_q


@dataclass
class Prepared:
    """One evaluation's behaviour model, per-target terms and the policy's recommendations."""

    model: Any  # the fitted behaviour model (saved as behaviour_model.joblib)
    source: str
    calibration: CalibrationResult
    n_floored: int
    terms: TargetTerms
    targets: list[str]
    recommended: np.ndarray  # (rows,) recommended action (bin) per step
    prob_recommended: np.ndarray  # (rows,) clinicians' probability of it
    returns_range: tuple[float, float]
    density_calibration: DensityCalibration | None = None
    warnings: list[str] = field(default_factory=list)
    fqe_choice: FqeChoice = field(default_factory=lambda: FqeChoice("neural", "FQE not fitted"))
    behaviour_fit: BehaviourFit | None = None  # with behaviour.cache_dir: the cache key and model hash


def _fitted_qs(
    trajectories: LoadedTrajectories, probs_fn: Callable[[pd.DataFrame], np.ndarray], rows: pd.DataFrame,
    features: list[str], config: OpeConfig, split: str, label: str, show: bool,
) -> list[np.ndarray]:
    """FQE for one target -> Q(s, a) on every evaluated row (rows, A): the fit on the whole fit
    split first, then one per bootstrap refit (`fqe.bootstrap_refits`)."""
    from .fqe import fit_fqe_with_refits

    fit_split = split if config.fqe.fit_split == "same" else config.fqe.fit_split
    fits = fit_fqe_with_refits(trajectories, probs_fn, features, config.fqe, split=fit_split,
                               gamma=config.gamma, seed=config.seed, n_threads=config.threads,
                               show_progress=show,
                               refits=config.fqe.bootstrap_refits if "FQE" in config.estimators else 0,
                               label=f"FQE {label}")
    return [np.asarray(fitted.q_values(rows[features]), dtype=np.float64) for fitted in fits]


def _q_terms(q: np.ndarray, probs: np.ndarray, actions: np.ndarray, layout: EpisodeLayout) -> QPair:
    """Padded Q(s_t, a_t) and V(s_t) = sum_a pi(a|s_t) Q(s_t, a) for the DR, WDR and FQE terms."""
    return (layout.pad(q[np.arange(len(q)), actions], 0.0), layout.pad((probs * q).sum(axis=1), 0.0))


def prepare_discrete(
    trajectories: LoadedTrajectories, policy: Any, label: str, rows: pd.DataFrame, fit_rows: pd.DataFrame,
    features: list[str], info: TrajectoryDatasetInfo, config: OpeConfig, layout: EpisodeLayout, split: str,
    show: bool,
) -> Prepared:
    """Action-probability ratios for the (epsilon-softened) policy and the clinicians."""
    with threadpool_limits(limits=config.threads):
        fitted = fit_or_load_behaviour(
            lambda: fit_behaviour_model(fit_rows, features, config.behaviour, config.seed, info),
            trajectories.manifest_sha256, features, info.n_actions, config)
    model = fitted.model
    behaviour = behaviour_probabilities(model, rows, features, info, config.behaviour)
    mask, rewards = layout.mask, layout.pad(rows[c.REWARD].to_numpy(np.float64), 0.0)
    actions, states, idx = rows[c.ACTION].to_numpy(np.int64), rows[features], np.arange(len(rows))
    targets: dict[str, tuple[np.ndarray, Callable[[pd.DataFrame], np.ndarray]]] = {
        label: (np.asarray(policy.action_probabilities(states, config.epsilon), dtype=np.float64),
                lambda f: policy.action_probabilities(f, config.epsilon)),
        CLINICIANS: (behaviour.clinician, lambda f: model.action_probabilities(f, info.n_actions)),
    }
    out = TargetTerms()
    returns = value_range(config.value_range, discounted_returns(rewards, config.gamma))
    choice = (choose_fqe(trajectories, rows, features, config, split, "discrete") if needs_q(config)
              else FqeChoice("neural", "FQE not fitted"))
    for target, (probs, probs_fn) in targets.items():
        # the clinicians' policy is the behaviour policy itself: its logged-action ratio is 1
        logged_target = behaviour.logged if target == CLINICIANS else probs[idx, actions]
        weights = importance_weights(layout.pad(logged_target, 1.0), layout.pad(behaviour.logged, 1.0), mask,
                                     config.max_weight)
        qs: list[np.ndarray | None] = [None]
        if needs_q(config) and choice.method == "tabular":
            tabular = fit_tabular_target(choice, probs_fn, rows, features, info.n_actions, config, returns)
            out.tabular[target], qs = tabular, [tabular.q_rows()]
        elif needs_q(config):
            qs = list(_fitted_qs(trajectories, probs_fn, rows, features, config, split, target, show))
        out.add(target, config, weights, rewards,
                [None if q is None else _q_terms(q, probs, actions, layout) for q in qs])
        if target != CLINICIANS:  # the clinicians' own value is identified: they are the behaviour policy
            low, high = support_bound_terms(
                probs, behaviour.clinician, behaviour.logged, actions, rewards, layout,
                threshold=config.support_threshold, bounds=returns, gamma=config.gamma,
                max_weight=config.max_weight)
            out.bound_terms[f"{target}|low"], out.bound_terms[f"{target}|high"] = low, high
    recommended = np.asarray(policy.recommend(states), dtype=np.int64)
    return Prepared(model=model, source=behaviour.source, calibration=behaviour.calibration,
                    n_floored=behaviour.n_floored, terms=out, targets=list(targets), recommended=recommended,
                    prob_recommended=behaviour.clinician[idx, recommended], returns_range=returns,
                    warnings=list(behaviour.warnings), fqe_choice=choice, behaviour_fit=fitted)


def prepare_continuous(
    trajectories: LoadedTrajectories, policy: Any, label: str, rows: pd.DataFrame, fit_rows: pd.DataFrame,
    features: list[str], info: TrajectoryDatasetInfo, config: OpeConfig, layout: EpisodeLayout, split: str,
    show: bool,
) -> Prepared:
    """Density ratios for the kernel-smoothed deterministic policy and the clinicians."""
    choice = choose_fqe(trajectories, rows, features, config, split, "continuous")
    kernel = dose_kernel(config, fit_rows, list(info.continuous_action_columns))
    bandwidth = kernel.bandwidth
    with threadpool_limits(limits=config.threads):
        fitted = fit_or_load_behaviour(lambda: fit_dose_density(fit_rows, features, info, config),
                                       trajectories.manifest_sha256, features, info.n_actions, config)
    model = fitted.model
    behaviour = dose_behaviour(model, rows, features, info, config, bandwidth)
    terms, policy_doses = continuous_target_terms(trajectories, policy, label, rows, features, info, config,
                                                  layout, behaviour, kernel, split, show)
    recommended, prob = recommended_support(policy_doses, behaviour, rows, features, info, bandwidth)
    rewards = layout.pad(rows[c.REWARD].to_numpy(np.float64), 0.0)
    return Prepared(model=model, source=behaviour.source, calibration=behaviour.calibration,
                    n_floored=behaviour.n_floored, terms=terms, targets=[label, CLINICIANS],
                    recommended=recommended, prob_recommended=prob,
                    returns_range=value_range(config.value_range, discounted_returns(rewards, config.gamma)),
                    density_calibration=behaviour.density_calibration,
                    warnings=list(behaviour.warnings), fqe_choice=choice, behaviour_fit=fitted)
