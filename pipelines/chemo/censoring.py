"""Censoring in trial outcomes: Kaplan-Meier estimates and inverse probability of censoring weights.

The reward of a trial episode is "event-free at the horizon" (alive, or alive and recurrence-free).
A patient last seen before the horizon has an unknown outcome. Dropping such patients, or counting
them as successes, biases the value. Instead each patient whose outcome at the horizon is observed
is weighted by 1 / G(horizon-), where G is the Kaplan-Meier estimate of the censoring distribution
(the "reverse" Kaplan-Meier of the follow-up times), and a censored patient gets 0 (IPCW, Robins &
Rotnitzky 1992; Bang & Tsiatis 2000). The mean IPCW reward then estimates P(event-free at the
horizon); with G estimated within an arm, the arm's mean is the arm's Kaplan-Meier estimate
(Satten & Datta 2001), which is what `dosewise evaluate --policy constant:ARM` is checked against.

Kaplan-Meier (Kaplan & Meier 1958) with Greenwood's variance and the log-log interval
(Kalbfleisch & Prentice 2002, sec. 1.4; R survival's `conf.type = "log-log"`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm


@dataclass(frozen=True)
class KaplanMeierPoint:
    """S(t) with its Greenwood log-log interval, and the counts behind it."""

    survival: float
    ci_low: float
    ci_high: float
    n: int
    n_events: int
    n_censored_before: int


def _steps(time: np.ndarray, event: np.ndarray, t: float, strict: bool) -> tuple[float, float]:
    """Product-limit S and Greenwood sum over event times <= t (or < t when `strict`)."""
    order = np.unique(time[event])
    order = order[order < t] if strict else order[order <= t]
    s, greenwood = 1.0, 0.0
    for u in order:
        at_risk = int(np.sum(time >= u))
        d = int(np.sum((time == u) & event))
        s *= 1.0 - d / at_risk
        greenwood += d / (at_risk * (at_risk - d)) if at_risk > d else np.inf
    return s, greenwood


def kaplan_meier_at(
    time: np.ndarray, event: np.ndarray, t: float, confidence: float = 0.95
) -> KaplanMeierPoint:
    """Kaplan-Meier S(t) = P(T > t) with the log-log Greenwood interval."""
    time = np.asarray(time, np.float64)
    event = np.asarray(event, bool)
    s, greenwood = _steps(time, event, t, strict=False)
    z = float(norm.ppf(0.5 + confidence / 2))
    if 0.0 < s < 1.0 and np.isfinite(greenwood):
        se = np.sqrt(greenwood) / abs(np.log(s))
        low, high = (float(np.exp(-np.exp(np.log(-np.log(s)) + k * z * se))) for k in (1, -1))
    else:
        low, high = s, s
    return KaplanMeierPoint(
        survival=float(s),
        ci_low=low,
        ci_high=high,
        n=len(time),
        n_events=int(np.sum(event & (time <= t))),
        n_censored_before=int(np.sum(~event & (time < t))),
    )


def censoring_survival_before(time: np.ndarray, event: np.ndarray, t: float) -> float:
    """G(t-) = P(C >= t): the reverse Kaplan-Meier of the censoring times, just before `t`."""
    time = np.asarray(time, np.float64)
    return _steps(time, ~np.asarray(event, bool), t, strict=True)[0]


def ipcw_outcome(
    time: np.ndarray, event: np.ndarray, horizon: float, strata: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """(reward per patient, outcome-known flag, G(horizon-) per stratum).

    Event-free through the horizon -> 1 / G(horizon-) of the patient's stratum; event by the
    horizon -> 0; censored before the horizon -> 0 (its weight is carried by the others).
    """
    time = np.asarray(time, np.float64)
    event = np.asarray(event, bool)
    failed = event & (time <= horizon)
    success = ~failed & (time >= horizon)
    reward = np.zeros(len(time))
    g_by: dict[str, float] = {}
    for stratum in np.unique(strata):
        rows = strata == stratum
        g = censoring_survival_before(time[rows], event[rows], horizon)
        g_by[str(stratum)] = g
        reward[rows & success] = 1.0 / g
    return reward, failed | success, g_by


def censoring_survival_curve(time: np.ndarray, event: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """t -> G(t-) = P(C >= t) for many t at once: the reverse Kaplan-Meier of `censoring_survival_before`
    (censoring events are `~event`; everyone with `time >= u` is at risk at u), vectorised."""
    time = np.asarray(time, np.float64)
    censored = ~np.asarray(event, bool)
    sorted_time = np.sort(time)
    u, d = np.unique(time[censored], return_counts=True)
    at_risk = len(time) - np.searchsorted(sorted_time, u, side="left")
    steps = np.concatenate([[1.0], np.cumprod(1.0 - d / np.maximum(at_risk, 1))])

    def g(t: np.ndarray) -> np.ndarray:
        out: np.ndarray = steps[np.searchsorted(u, np.asarray(t, np.float64), side="left")]
        return out

    return g
