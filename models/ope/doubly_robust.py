"""Doubly robust estimators (DR, WDR) on top of a fitted Q-function, vectorised over episodes.

References: Jiang & Li 2016, "Doubly robust off-policy value evaluation for RL" (per-decision
DR); Thomas & Brunskill 2016, "Data-efficient off-policy policy evaluation for RL" (weighted
DR). `q_logged[i, t]` is Q(s_t, a_t) and `v_target[i, t]` is sum_a pi(a|s_t) Q(s_t, a); both are
zero on padding (the absorbing state after an episode ends).
"""

from __future__ import annotations

import numpy as np

from .episodes import discounts
from .importance_sampling import ImportanceWeights
from .terms import RatioTerms


def dr_terms(
    weights: ImportanceWeights,
    rewards: np.ndarray,
    q_logged: np.ndarray,
    v_target: np.ndarray,
    gamma: float,
) -> RatioTerms:
    """DR: mean_i sum_t gamma^t [w_it (r_it - Q(s_it, a_it)) + w_i,t-1 V(s_it)]."""
    per_step = weights.cumulative * (rewards - q_logged) + weights.previous * v_target
    return RatioTerms(per_step, None, discounts(rewards.shape[1], gamma))


def wdr_terms(
    weights: ImportanceWeights,
    rewards: np.ndarray,
    q_logged: np.ndarray,
    v_target: np.ndarray,
    gamma: float,
) -> RatioTerms:
    """WDR: DR with each step's weights normalised by their sum over episodes."""
    g = discounts(rewards.shape[1], gamma)
    numer = np.concatenate(
        [weights.cumulative * (rewards - q_logged), weights.previous * v_target], axis=1
    )
    denom = np.concatenate([weights.cumulative, weights.previous], axis=1)
    return RatioTerms(numer, denom, np.concatenate([g, g]))


def direct_method_terms(v_initial: np.ndarray) -> RatioTerms:
    """Model-based value (FQE): mean of V(s_0) over episodes."""
    return RatioTerms(np.asarray(v_initial, dtype=np.float64)[:, None], None, np.ones(1))
