"""The range of values the data allow when a policy leaves the clinicians' support.

Where the policy puts probability on actions the clinicians (almost) never took, no estimator
can know what those actions lead to: two worlds that differ only there log the same data. So
besides its point estimates the report gives partial-identification bounds (Manski 1990; for
off-policy evaluation without overlap, Khan, Saveski & Ugander 2023): the policy's value if every
episode that reaches an out-of-support action ends with the lowest, or the highest, return.

With S the probability that an episode under the policy stays in the support and V_in its mean
return when it does, the value lies in [S V_in + (1 - S) G_min, S V_in + (1 - S) G_max]. Both parts
are self-normalised importance-sampling ratios, as WIS is, with the policy's in-support
probabilities as the target (weights w_t, zero once it would leave): S is the product over steps
of 1 - h_t, where h_t = sum_i w_i,t-1 m_i,t / sum_i w_i,t-1 and m is the policy's out-of-support
mass in the state reached (E_mu[w_t] = E_mu[w_t-1 (1 - m_t)]); V_in is WIS with those weights.
Tried first and dropped: per-decision DR of each bound (its typical error on near-greedy ICU-Sepsis
targets made the range too narrow and excluded the truth) and trajectory-wise IS (never too narrow,
but so heavy-tailed that the demo policy, leaving the support in about 3 % of episodes, was
reported at 60 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dosewise.data_schemas import BadInputError
from dosewise.data_schemas.ope import OpeEstimate, SupportBounds

from .bootstrap import BootstrapResult
from .episodes import EpisodeLayout, discounted_returns
from .importance_sampling import importance_weights
from .terms import RatioTerms, ratios


def value_range(
    configured: tuple[float, float] | None, returns: np.ndarray
) -> tuple[float, float]:
    """The configured range of episode returns, else the observed one."""
    if configured is not None:
        low, high = float(configured[0]), float(configured[1])
    else:
        low, high = float(returns.min()), float(returns.max())
    if not low <= high:
        raise BadInputError(f"value_range must be [low, high] with low <= high; got [{low}, {high}].",
                            "Set `value_range` in the OPE config to the lowest and highest episode return.")
    return low, high


@dataclass(frozen=True)
class SupportBoundTerms(RatioTerms):
    """One support bound as ratios of episode sums (bootstrapped like every estimator): columns
    0..T-1 hold the per-step leaving hazards, column T the in-support WIS."""

    bound: float = 0.0  # the return assumed for episodes that leave the support

    def combine(self, numer_sums: np.ndarray, denom_sums: np.ndarray) -> np.ndarray:
        """(B,) bounds: S * V_in + (1 - S) * bound, with S = prod_t (1 - h_t)."""
        ratio = ratios(numer_sums, denom_sums)
        stay = _stay(ratio, denom_sums)
        combined: np.ndarray = stay * ratio[:, -1] + (1.0 - stay) * self.bound
        return combined

    def stay_probability(self) -> float:
        """S on all episodes: the estimated chance that an episode stays in the support."""
        numer, denom = self.numer.sum(axis=0)[None, :], self._denom_sums()[None, :]
        return float(_stay(ratios(numer, denom), denom)[0])


def _stay(ratio: np.ndarray, denom_sums: np.ndarray) -> np.ndarray:
    """(B,) S = prod_t (1 - h_t) from the hazard columns; 0 when no episode keeps any weight."""
    stay: np.ndarray = np.where(denom_sums[:, -1] > 0, np.prod(1.0 - ratio[:, :-1], axis=1), 0.0)
    return stay


def support_bound_terms(
    target_probs: np.ndarray,
    behaviour_all: np.ndarray,
    behaviour_logged: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    layout: EpisodeLayout,
    *,
    threshold: float,
    bounds: tuple[float, float],
    gamma: float,
    max_weight: float | None = None,
) -> tuple[SupportBoundTerms, SupportBoundTerms]:
    """Per-episode terms of the lower and upper bound on one target's value.

    `target_probs` and `behaviour_all` are (rows, A) action probabilities on the evaluated rows;
    an action is out of support where the clinicians' probability is below `threshold`.
    """
    rows = np.arange(len(actions))
    inside = behaviour_all >= threshold
    logged_in = np.where(inside[rows, actions], target_probs[rows, actions], 0.0)
    weights = importance_weights(layout.pad(logged_in, 1.0), layout.pad(behaviour_logged, 1.0), layout.mask,
                                 max_weight)
    leaving = layout.pad((target_probs * ~inside).sum(axis=1), 0.0)  # zero after the episode ended
    w_end = weights.trajectory[:, None]
    numer = np.concatenate([weights.previous * leaving, w_end * discounted_returns(rewards, gamma)[:, None]],
                           axis=1)
    denom = np.concatenate([weights.previous, w_end], axis=1)
    coef = np.ones(numer.shape[1])
    return (SupportBoundTerms(numer, denom, coef, bound=bounds[0]),
            SupportBoundTerms(numer, denom, coef, bound=bounds[1]))


def summarise_bounds(
    target: str, low: BootstrapResult, high: BootstrapResult, returns: tuple[float, float],
    configured: bool, threshold: float, terms: SupportBoundTerms,
) -> SupportBounds:
    """The report entry for one target's bounds, with the estimated share of episodes that leave."""
    return SupportBounds(target=target, value_low=low.value, value_high=high.value, ci_low=low.ci_low,
                         ci_high=high.ci_high, return_low=returns[0], return_high=returns[1],
                         return_range_source="configured" if configured else "observed",
                         share_leaving_support=1.0 - terms.stay_probability(), threshold=threshold)


def bound_warnings(bounds: list[SupportBounds], estimates: list[OpeEstimate]) -> list[str]:
    """A warning per target whose support bounds are wider than its headline interval (WIS, else
    the first estimator): there the unknown out-of-support outcomes matter more than sampling."""
    out = []
    for item in bounds:
        own = [e for e in estimates if e.target == item.target]
        headline = next((e for e in own if e.estimator == "WIS"), own[0] if own else None)
        if headline is None:
            continue
        if item.value_high - item.value_low > headline.ci_high - headline.ci_low:
            out.append(
                f"{item.target}: about {100 * item.share_leaving_support:.0f} % of its episodes would reach "
                f"an action the clinicians took with probability < {item.threshold:g}, so the data allow any "
                f"value in [{item.value_low:.3f}, {item.value_high:.3f}] (95 % CI {item.ci_low:.3f} to "
                f"{item.ci_high:.3f}), wider than the {headline.estimator} interval. The point estimates "
                "assume what those actions lead to.")
    return out
