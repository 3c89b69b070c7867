"""Per-target estimator terms: importance weights + Q terms -> IS ... FQE, for discrete action
probabilities and for continuous dose densities alike.

`TargetTerms` gathers, for every evaluated target, the estimators' per-episode terms (for the point
values and the bootstrap), its weights (for ESS and the weight summary), the FQE values of the refits
(to widen the FQE interval) and, for discrete targets, the support-bound terms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dosewise.data_schemas import TrajectoryDatasetInfo

from ..datasets import LoadedTrajectories
from .bounds import SupportBoundTerms
from .config import OpeConfig
from .continuous import DoseBehaviour, DoseKernel
from .doubly_robust import direct_method_terms, dr_terms, wdr_terms
from .episodes import EpisodeLayout
from .fqe_tabular import TabularFqe
from .importance_sampling import (
    ImportanceWeights,
    importance_weights,
    is_terms,
    pdis_terms,
    pdwis_terms,
    wis_terms,
)
from .terms import RatioTerms

CLINICIANS = "clinicians"
Q_ESTIMATORS = ("DR", "WDR", "FQE")
QPair = tuple[np.ndarray, np.ndarray]  # padded Q(s_t, a_t) and V(s_t)


@dataclass
class TargetTerms:
    """Everything the bootstrap and the report need, per target."""

    all_terms: dict[str, RatioTerms] = field(default_factory=dict)  # "target|estimator" -> terms
    weights: dict[str, ImportanceWeights] = field(default_factory=dict)
    dr_weights: dict[str, ImportanceWeights] = field(default_factory=dict)  # where DR/WDR clip differently
    refit_values: dict[str, list[float]] = field(default_factory=dict)
    bound_terms: dict[str, SupportBoundTerms] = field(default_factory=dict)
    tabular: dict[str, TabularFqe] = field(default_factory=dict)  # target -> tabular FQE (its refits)

    def add(self, target: str, config: OpeConfig, weights: ImportanceWeights, rewards: np.ndarray,
            pairs: list[QPair | None], dr_weights: ImportanceWeights | None = None) -> None:
        """One target's terms: every estimator on the main Q fit, the FQE value of each refit.

        `dr_weights` (default: `weights`) are the ratios DR and WDR use, clipped at their own clip."""
        self.weights[target] = weights
        if dr_weights is not None:
            self.dr_weights[target] = dr_weights
        for name, terms in estimator_terms(config, weights, rewards, pairs[0], dr_weights).items():
            self.all_terms[f"{target}|{name}"] = terms
        fqe_only = config.model_copy(update={"estimators": ["FQE"]})  # refits widen the direct method only
        for pair in pairs[1:]:
            for name, terms in estimator_terms(fqe_only, weights, rewards, pair).items():
                self.refit_values.setdefault(f"{target}|{name}", []).append(terms.value())


def estimator_terms(config: OpeConfig, weights: ImportanceWeights, rewards: np.ndarray, q: QPair | None,
                    dr_weights: ImportanceWeights | None = None) -> dict[str, RatioTerms]:
    """The configured estimators' per-episode terms for one target (DR and WDR on `dr_weights`
    where given)."""
    g = config.gamma
    dr_w = weights if dr_weights is None else dr_weights
    makers: dict[str, Callable[[], RatioTerms]] = {
        "IS": lambda: is_terms(weights, rewards, g), "WIS": lambda: wis_terms(weights, rewards, g),
        "PDIS": lambda: pdis_terms(weights, rewards, g), "PDWIS": lambda: pdwis_terms(weights, rewards, g),
    }
    if q is not None:
        q_logged, v_target = q
        makers["DR"] = lambda: dr_terms(dr_w, rewards, q_logged, v_target, g)
        makers["WDR"] = lambda: wdr_terms(dr_w, rewards, q_logged, v_target, g)
        makers["FQE"] = lambda: direct_method_terms(v_target[:, 0])
    return {name: makers[name]() for name in config.estimators if name in makers}


def needs_q(config: OpeConfig) -> bool:
    """FQE is fitted when it is enabled and an estimator uses it."""
    return config.fqe.enabled and bool(set(Q_ESTIMATORS) & set(config.estimators))


def continuous_target_terms(
    trajectories: LoadedTrajectories, policy: Any, label: str, rows: pd.DataFrame, features: list[str],
    info: TrajectoryDatasetInfo, config: OpeConfig, layout: EpisodeLayout, behaviour: DoseBehaviour,
    kernel: DoseKernel, split: str, show: bool,
) -> tuple[TargetTerms, np.ndarray]:
    """Density-ratio terms for the kernel-smoothed policy and for the clinicians (ratio 1), with
    continuous FQE for DR/WDR/FQE. Returns the terms and the policy's doses on `rows`."""
    from dosewise.data_schemas import columns as c

    from .continuous_fqe import fit_continuous_fqe

    doses_cols = list(info.continuous_action_columns)
    logged = rows[doses_cols].to_numpy(np.float64)
    states = rows[features]
    policy_doses = _policy_doses(policy, states, doses_cols)
    mask, rewards = layout.mask, layout.pad(rows[c.REWARD].to_numpy(np.float64), 0.0)
    target_density = kernel.density(logged, policy_doses)
    out = TargetTerms()
    fit_split = split if config.fqe.fit_split == "same" else config.fqe.fit_split
    refits = config.fqe.bootstrap_refits if "FQE" in config.estimators else 0
    targets: list[tuple[str, np.ndarray, Any]] = [
        (label, target_density, lambda f: _policy_doses(policy, f[features], doses_cols)),
        (CLINICIANS, behaviour.logged, None),
    ]
    clip, dr_clip = config.ratio_clip("continuous"), config.dr_ratio_clip("continuous")
    for name, numerator, dose_fn in targets:
        target_prob, behaviour_prob = layout.pad(numerator, 1.0), layout.pad(behaviour.logged, 1.0)
        weights = importance_weights(target_prob, behaviour_prob, mask, clip)
        dr_weights = (importance_weights(target_prob, behaviour_prob, mask, dr_clip)
                      if dr_clip != clip and needs_q(config) else None)
        pairs: list[QPair | None] = [None]
        if needs_q(config):
            fits = fit_continuous_fqe(trajectories, dose_fn, features, config.fqe, split=fit_split,
                                      gamma=config.gamma, seed=config.seed, refits=refits,
                                      label=f"FQE {name}", n_threads=config.threads, show_progress=show)
            at = logged if dose_fn is None else policy_doses  # clinicians: V(s) = Q(s, logged dose)
            pairs = [(layout.pad(q.q_at(states, logged), 0.0), layout.pad(q.q_at(states, at), 0.0))
                     for q in fits]
        out.add(name, config, weights, rewards, pairs, dr_weights)
    return out, policy_doses


def _policy_doses(policy: Any, states: pd.DataFrame, doses_cols: list[str]) -> np.ndarray:
    """(n, k) the policy's recommended doses in the dataset's dose-column order."""
    frame = policy.recommend_doses(states)
    missing = [d for d in doses_cols if d not in frame.columns]
    if missing:
        from dosewise.data_schemas import BadInputError

        raise BadInputError(f"Policy `{policy.name}` recommends {list(frame.columns)}, not the dose columns "
                            f"{doses_cols} of these trajectories (missing {missing}).",
                            "Evaluate on trajectories with the dose columns the policy was trained on.")
    doses: np.ndarray = frame[doses_cols].to_numpy(np.float64)
    return doses
