"""True values of chemotherapy dosing policies by Monte Carlo on the known dynamics.

The counterpart of `icu_sepsis.exact_policy_value`: the value of a policy is the mean
undiscounted return per patient (the ETL's reward, `chemo.rewards`, applied to the simulated
records without censoring), with its Monte-Carlo standard error. Policies evaluated with the
same seed see the same patients and the same chance events (common random numbers), so their
paired difference has a much smaller standard error than either value (`compare_policies`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..chemo.config import ChemoEpisodeConfig, ChemoRewardConfig
from ..chemo.rewards import patient_outcomes, rewards_and_ends
from .oncology_policy import CyclePolicy
from .oncology_sim import RegimenSettings, SimulatedCohort, simulate_cohort

_EPOCH = pd.Timestamp("2000-01-01")


@dataclass(frozen=True)
class PolicyValue:
    """Monte-Carlo value of one policy: mean return, its standard error, and the per-patient returns."""

    value: float
    se: float
    n_patients: int
    returns: np.ndarray

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """Normal-approximation interval (95 % by default)."""
        return self.value - z * self.se, self.value + z * self.se


def _as_dates(days: pd.Series) -> pd.Series:
    return _EPOCH + pd.to_timedelta(days, unit="D")


def cohort_returns(cohort: SimulatedCohort, reward: ChemoRewardConfig) -> np.ndarray:
    """Undiscounted return of every simulated patient under the ETL's reward definition."""
    pts = cohort.patients
    frame = pd.DataFrame(
        {
            "patient_id": pts["patient_id"],
            "first_cycle_date": _EPOCH,
            "death_date": _as_dates(pts["death_day"]),
            "progression_date": _as_dates(pts["progression_day"]),
            "last_followup_date": _as_dates(pts["last_followup_day"]),
        }
    )
    outcomes = patient_outcomes(frame, reward)
    cycles = cohort.cycles
    if cycles.empty:
        return np.zeros(len(pts))
    parts = rewards_and_ends(cycles, outcomes, reward, ChemoEpisodeConfig())
    per_patient = parts["reward"].groupby(cycles["patient_id"].to_numpy()).sum()
    return np.asarray(per_patient.reindex(pts["patient_id"].to_numpy()).fillna(0.0).to_numpy(np.float64))


def true_policy_value(
    policy: CyclePolicy,
    n_patients: int = 20_000,
    seed: int = 0,
    reward: ChemoRewardConfig | None = None,
    settings: RegimenSettings | None = None,
) -> PolicyValue:
    """Monte-Carlo value (mean return +/- SE) of `policy` on `n_patients` simulated patients.

    `reward` must be the reward config of the trajectories being evaluated (the ETL default when
    omitted), so the value is on the same scale as off-policy estimates. Censoring is switched off:
    the truth is the value with every outcome observed.
    """
    reward = reward or ChemoRewardConfig()
    s = replace(settings or RegimenSettings(), censoring=False, horizon_days=reward.horizon_days)
    returns = cohort_returns(simulate_cohort(policy, n_patients, seed, s), reward)
    se = float(returns.std(ddof=1) / np.sqrt(len(returns))) if len(returns) > 1 else float("nan")
    return PolicyValue(float(returns.mean()), se, len(returns), returns)


def compare_policies(
    policies: dict[str, CyclePolicy],
    n_patients: int = 20_000,
    seed: int = 0,
    reward: ChemoRewardConfig | None = None,
    baseline: str | None = None,
) -> pd.DataFrame:
    """Values of several policies on common random numbers, with each one's paired difference
    to `baseline` (the first policy by default) and the SE of that difference."""
    values = {name: true_policy_value(pol, n_patients, seed, reward) for name, pol in policies.items()}
    base = values[baseline or next(iter(values))]
    rows = []
    for name, v in values.items():
        diff = v.returns - base.returns
        rows.append(
            {
                "policy": name,
                "value": v.value,
                "se": v.se,
                "difference": float(diff.mean()),
                "difference_se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
            }
        )
    return pd.DataFrame(rows)
