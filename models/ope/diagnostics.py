"""Diagnostics that say how far to trust an estimate: Kish ESS, weight summaries, support flags.

Kish 1965 effective sample size (sum w)^2 / sum w^2. Support follows the "out of clinical
support" idea of Gottesman et al. 2019 (Guidelines for RL in healthcare): a recommended action
the clinicians took with probability below a threshold has little data behind it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dosewise.data_schemas import columns as c
from dosewise.data_schemas.ope import SupportSummary, WeightSummary

from .importance_sampling import ImportanceWeights

SUPPORT_COLUMNS = (c.EPISODE_ID, c.STEP, "recommended_action", "behaviour_prob_recommended",
                   "out_of_support")


def kish_ess(weights: np.ndarray) -> float:
    """(sum w)^2 / sum w^2 over the last axis; 0 when every weight is 0.

    >>> kish_ess(np.array([1.0, 1.0, 1.0, 1.0]))
    4.0
    >>> kish_ess(np.array([1.0, 0.0, 0.0, 0.0]))
    1.0
    """
    total_sq = float(np.sum(weights**2))
    return float(np.sum(weights)) ** 2 / total_sq if total_sq > 0 else 0.0


def per_decision_ess(weights: ImportanceWeights, mask: np.ndarray) -> float:
    """Mean over steps of the Kish ESS of the running weights, each step weighted by the
    episodes still active there and rescaled to the whole cohort, so it stays <= n."""
    n = weights.cumulative.shape[0]
    active = mask.sum(axis=0)
    values = []
    for t in np.flatnonzero(active):
        w_t = weights.cumulative[mask[:, t], t]
        values.append(kish_ess(w_t) / active[t] * n)
    return float(np.mean(values)) if values else 0.0


def estimator_ess(name: str, weights: ImportanceWeights, mask: np.ndarray) -> float | None:
    """The ESS shown beside an estimator: trajectory-wise for IS/WIS, per-decision for
    PDIS/PDWIS/DR/WDR, none for FQE (it has no weights)."""
    if name in ("IS", "WIS"):
        return kish_ess(weights.trajectory)
    if name in ("PDIS", "PDWIS", "DR", "WDR"):
        return per_decision_ess(weights, mask)
    return None


def weight_summary(target: str, weights: ImportanceWeights) -> WeightSummary:
    """Mean, median, 99th percentile, max and the share of zero trajectory weights."""
    w = weights.trajectory
    return WeightSummary(
        target=target,
        n_episodes=int(w.size),
        mean=float(w.mean()),
        median=float(np.median(w)),
        p99=float(np.quantile(w, 0.99)),
        max=float(w.max()),
        share_zero=float(np.mean(w == 0)),
        n_clipped=weights.n_clipped,
    )


def support_flags(
    frame: pd.DataFrame,
    recommended: np.ndarray,
    behaviour_probs: np.ndarray,
    threshold: float,
) -> pd.DataFrame:
    """One row per (episode, step): the recommended action, the clinicians' probability of it
    and whether that is below `threshold` (`support_flags.parquet` for the review app).
    `behaviour_probs` is (n, A) over the actions, or (n,) already taken at the recommendation."""
    prob = (behaviour_probs[np.arange(len(recommended)), recommended] if behaviour_probs.ndim == 2
            else behaviour_probs)
    return pd.DataFrame(
        {
            c.EPISODE_ID: frame[c.EPISODE_ID].to_numpy(),
            c.STEP: frame[c.STEP].to_numpy(dtype=np.int64),
            "recommended_action": recommended.astype(np.int64),
            "behaviour_prob_recommended": prob.astype(np.float64),
            "out_of_support": prob < threshold,
        }
    )


def support_summary(flags: pd.DataFrame, threshold: float) -> SupportSummary:
    """Share of steps out of support, of episodes with any, and the mean share per episode."""
    per_episode = flags.groupby(c.EPISODE_ID, sort=False)["out_of_support"].mean()
    return SupportSummary(
        threshold=threshold,
        share_steps_out_of_support=float(flags["out_of_support"].mean()),
        share_episodes_with_any=float((per_episode > 0).mean()),
        mean_share_per_episode=float(per_episode.mean()),
        n_steps=len(flags),
    )
