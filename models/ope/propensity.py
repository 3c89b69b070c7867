"""Per-action behaviour probabilities: the known ones (a trial's randomisation) beside the fitted model's.

In a randomised trial the logging policy is known: arm k with probability p_k whatever the state.
A behaviour classifier fitted on the trial's covariates should recover it, averaging p_k over the
evaluated states; if it does not, the classifier (and every weight built on it) is off. The
interval is the percentile interval of that average over refits of the classifier on episode
bootstrap resamples of its fit split, so it holds the fitting error, not just the spread of states.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dosewise.data_schemas import TrajectoryDatasetInfo
from dosewise.data_schemas import columns as c
from dosewise.data_schemas.ope import ActionPropensity

from .config import OpeConfig
from .inputs import fit_behaviour_model


def _mean_probabilities(model: object, rows: pd.DataFrame, features: list[str], n_actions: int) -> np.ndarray:
    probs = np.asarray(model.action_probabilities(rows[features], n_actions))  # type: ignore[attr-defined]
    return np.asarray(probs.mean(axis=0))


def _refit_means(
    fit_rows: pd.DataFrame,
    rows: pd.DataFrame,
    features: list[str],
    info: TrajectoryDatasetInfo,
    config: OpeConfig,
) -> np.ndarray:
    """(refits, n_actions) mean fitted probabilities, each refit on an episode resample of `fit_rows`."""
    episodes = fit_rows[c.EPISODE_ID].to_numpy()
    unique, codes = np.unique(episodes, return_inverse=True)
    members = [np.flatnonzero(codes == k) for k in range(len(unique))]
    rng = np.random.default_rng(config.seed + 7919)
    out = []
    for b in range(config.behaviour.propensity_refits):
        pick = np.concatenate([members[k] for k in rng.integers(0, len(unique), len(unique))])
        model = fit_behaviour_model(
            fit_rows.iloc[pick], features, config.behaviour, config.seed + b + 1, info
        )
        out.append(_mean_probabilities(model, rows, features, info.n_actions))
    return np.asarray(out).reshape(-1, info.n_actions)


def action_propensities(
    model: object,
    fit_rows: pd.DataFrame,
    rows: pd.DataFrame,
    features: list[str],
    info: TrajectoryDatasetInfo,
    config: OpeConfig,
) -> list[ActionPropensity]:
    """Per action: steps that logged it, its mean known probability, and the fitted mean with interval."""
    fitted = _mean_probabilities(model, rows, features, info.n_actions)
    refits = (
        _refit_means(fit_rows, rows, features, info, config) if config.behaviour.propensity_refits else None
    )
    alpha = (1.0 - config.confidence) / 2
    actions = rows[c.ACTION].to_numpy(np.int64)
    known = (
        rows[c.BEHAVIOUR_PROB].to_numpy(np.float64)
        if info.has_behaviour_prob and c.BEHAVIOUR_PROB in rows
        else None
    )
    out = []
    for k in range(info.n_actions):
        logged = actions == k
        low, high = (
            (None, None)
            if refits is None
            else (float(np.quantile(refits[:, k], alpha)), float(np.quantile(refits[:, k], 1 - alpha)))
        )
        out.append(
            ActionPropensity(
                action=k,
                label=info.action_labels[k] if k < len(info.action_labels) else None,
                n_logged=int(logged.sum()),
                known=float(known[logged].mean()) if known is not None and logged.any() else None,
                fitted=float(fitted[k]),
                ci_low=low,
                ci_high=high,
            )
        )
    return out
