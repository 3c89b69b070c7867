"""Importance sampling estimators (IS, WIS, PDIS, PDWIS), vectorised over padded episodes.

References: Precup, Sutton & Singh 2000 (per-decision IS); Thomas 2015, "Safe reinforcement
learning" (weighted variants); Komorowski et al. 2018, AI Clinician (trajectory-wise WIS).
Padding steps carry ratio 1 and reward 0, so weights stay constant after an episode ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dosewise.data_schemas import BadInputError

from .episodes import discounted_returns, discounts
from .terms import RatioTerms


@dataclass(frozen=True)
class ImportanceWeights:
    """Per-step ratios and their running products, plus how many ratios were clipped."""

    ratios: np.ndarray  # (n, T) pi/mu per step, 1 on padding
    cumulative: np.ndarray  # (n, T) prod_{u<=t} ratio
    n_clipped: int

    @property
    def trajectory(self) -> np.ndarray:
        """(n,) the whole-episode weight."""
        return self.cumulative[:, -1]

    @property
    def previous(self) -> np.ndarray:
        """(n, T) the weight up to the step before (1 at t = 0)."""
        ones = np.ones((self.cumulative.shape[0], 1))
        return np.concatenate([ones, self.cumulative[:, :-1]], axis=1)


def importance_weights(
    target_prob: np.ndarray,
    behaviour_prob: np.ndarray,
    mask: np.ndarray,
    max_weight: float | None = None,
) -> ImportanceWeights:
    """Per-step ratios pi(a|s)/mu(a|s) of the logged actions, optionally clipped at `max_weight`.

    A behaviour probability of zero (or below) for a logged action cannot be: it is an error here;
    the caller floors probabilities first and reports how many it floored.
    """
    if np.any(behaviour_prob[mask] <= 0):
        raise BadInputError(
            f"{int(np.sum(behaviour_prob[mask] <= 0))} logged actions have behaviour probability 0.",
            "Set `behaviour.min_prob` in the OPE config to floor them (the report counts them).",
        )
    ratios = np.where(mask, target_prob / np.where(mask, behaviour_prob, 1.0), 1.0)
    n_clipped = 0
    if max_weight is not None:
        over = ratios > max_weight
        n_clipped = int(over.sum())
        ratios = np.minimum(ratios, max_weight)
    return ImportanceWeights(ratios, np.cumprod(ratios, axis=1), n_clipped)


def is_terms(weights: ImportanceWeights, rewards: np.ndarray, gamma: float) -> RatioTerms:
    """Trajectory-wise IS: mean of w_i * G_i."""
    wg = weights.trajectory * discounted_returns(rewards, gamma)
    return RatioTerms(wg[:, None], None, np.ones(1))


def wis_terms(weights: ImportanceWeights, rewards: np.ndarray, gamma: float) -> RatioTerms:
    """Trajectory-wise weighted IS: sum w_i G_i / sum w_i (always within [min G, max G])."""
    w = weights.trajectory
    wg = w * discounted_returns(rewards, gamma)
    return RatioTerms(wg[:, None], w[:, None], np.ones(1))


def pdis_terms(weights: ImportanceWeights, rewards: np.ndarray, gamma: float) -> RatioTerms:
    """Per-decision IS: sum_t gamma^t mean_i(w_it r_it)."""
    return RatioTerms(weights.cumulative * rewards, None, discounts(rewards.shape[1], gamma))


def pdwis_terms(weights: ImportanceWeights, rewards: np.ndarray, gamma: float) -> RatioTerms:
    """Per-decision weighted IS: sum_t gamma^t sum_i w_it r_it / sum_i w_it."""
    return RatioTerms(
        weights.cumulative * rewards, weights.cumulative, discounts(rewards.shape[1], gamma)
    )
