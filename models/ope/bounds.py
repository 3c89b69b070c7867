"""The range of values the data allow when a policy leaves the clinicians' support.

Where the policy puts probability on actions the clinicians (almost) never took, no estimator
can know what those actions lead to: two worlds that differ only there log the same data. So
besides its point estimates the report gives partial-identification bounds (Manski 1990; for
off-policy evaluation without overlap, Khan, Saveski & Ugander 2023): the policy's value if every
episode that reaches an out-of-support action ends with the lowest, or the highest, return.

With w_i the episode's importance weight under the policy's in-support probabilities (zero once
it would leave the support), the value lies between G_min + E[w (G - G_min)] and
G_max - E[w (G_max - G)]. Both are estimated by trajectory-wise importance sampling, normalised by
n or by the sum of the weights, whichever is larger (the weights average at most 1 in
expectation; a sample where they average more collapses the range onto WIS rather than crossing
the bounds). No model term on purpose: each per-episode term is then one-signed, so when the
weights are heavy-tailed a typical sample under-counts the rare heavily weighted episodes and
both bounds move outwards (wider, not falsely narrow). A DR version (FQE as control variate) was
tried first: on near-greedy ICU-Sepsis targets its typical error made the range too narrow and
excluded the true value.
"""

from __future__ import annotations

import numpy as np

from dosewise.data_schemas import BadInputError
from dosewise.data_schemas.ope import OpeEstimate, SupportBounds

from .bootstrap import BootstrapResult
from .episodes import EpisodeLayout, discounted_returns
from .importance_sampling import ImportanceWeights, importance_weights
from .terms import RatioTerms


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
) -> tuple[RatioTerms, RatioTerms, ImportanceWeights]:
    """Per-episode terms of the lower and upper bound on one target's value, and the in-support
    weights behind them.

    `target_probs` and `behaviour_all` are (rows, A) action probabilities on the evaluated rows;
    an action is out of support where the clinicians' probability is below `threshold`.
    """
    rows = np.arange(len(actions))
    inside = behaviour_all >= threshold
    logged_in = np.where(inside[rows, actions], target_probs[rows, actions], 0.0)
    weights = importance_weights(layout.pad(logged_in, 1.0), layout.pad(behaviour_logged, 1.0), layout.mask,
                                 max_weight)
    w, g = weights.trajectory[:, None], discounted_returns(rewards, gamma)[:, None]
    low, high = bounds
    one = np.ones(1)
    return (RatioTerms(w * (g - low), w, one, floor=True, offset=low),
            RatioTerms(w * (g - high), w, one, floor=True, offset=high), weights)


def summarise_bounds(
    target: str, low: BootstrapResult, high: BootstrapResult, returns: tuple[float, float],
    configured: bool, threshold: float, weights: ImportanceWeights,
) -> SupportBounds:
    """The report entry for one target's bounds; the share leaving support is the bounds' width
    over the return range, 1 - mean(w): the estimated chance of reaching an out-of-support action."""
    span = returns[1] - returns[0]
    share = None if span <= 0 else float(np.clip((high.value - low.value) / span, 0.0, 1.0))
    return SupportBounds(target=target, value_low=low.value, value_high=high.value, ci_low=low.ci_low,
                         ci_high=high.ci_high, return_low=returns[0], return_high=returns[1],
                         return_range_source="configured" if configured else "observed",
                         share_leaving_support=share, threshold=threshold,
                         mean_weight=float(weights.trajectory.mean()))


def bound_warnings(bounds: list[SupportBounds], estimates: list[OpeEstimate]) -> list[str]:
    """A warning per target whose support bounds are wider than its headline interval (WIS, else
    the first estimator): there the unknown out-of-support outcomes matter more than sampling."""
    out = []
    for item in bounds:
        if item.mean_weight > 1.0:
            out.append(
                f"{item.target}: its in-support importance weights average {item.mean_weight:.2f}, above the "
                "at most 1 they average in expectation, so a few heavily weighted episodes dominate this "
                f"sample: the support bounds' point values are unreliable; read their interval "
                f"[{item.ci_low:.3f}, {item.ci_high:.3f}].")
            continue
        own = [e for e in estimates if e.target == item.target]
        headline = next((e for e in own if e.estimator == "WIS"), own[0] if own else None)
        if headline is None or item.share_leaving_support is None:
            continue
        if item.value_high - item.value_low > headline.ci_high - headline.ci_low:
            out.append(
                f"{item.target}: about {100 * item.share_leaving_support:.0f} % of its episodes would reach "
                f"an action the clinicians took with probability < {item.threshold:g}, so the data allow any "
                f"value in [{item.value_low:.3f}, {item.value_high:.3f}] (95 % CI {item.ci_low:.3f} to "
                f"{item.ci_high:.3f}), wider than the {headline.estimator} interval. The point estimates "
                "assume what those actions lead to.")
    return out
