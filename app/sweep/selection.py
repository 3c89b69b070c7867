"""Model selection over sweep trials: the OPE lower bound with an ESS floor, and how good it was.

On ICU-Sepsis the exact value of every trial's policy is known, so a sweep there also reports the
selection regret (best exact value among the trials minus the selected one's) and the Spearman
rank correlation between the validation estimates and the exact values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class TrialRow:
    """One trial: its settings, status, validation score (lower bound), estimate, ESS, exact value, time."""

    index: int
    settings: dict[str, Any]
    status: str
    score: float | None = None
    estimate: float | None = None
    ess: float | None = None
    run_id: str | None = None
    policy_dir: str | None = None
    error: str | None = None
    exact: float | None = None
    seconds: float | None = None
    cpu_seconds: float | None = None  # the trial process's CPU over train + validation OPE
    behaviour_model: str | None = None  # "fitted|loaded <cache key>" of the validation OPE's behaviour model

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields."""
        return asdict(self)

    def label(self) -> str:
        """`key=value, ...` of the trial's settings."""
        return ", ".join(f"{k}={v}" for k, v in self.settings.items())


def select_winner(rows: list[TrialRow], min_ess: float) -> TrialRow | None:
    """The finished trial with the highest score among those with ESS >= `min_ess` (None: none)."""
    eligible = [
        r for r in rows if r.status == "finished" and r.score is not None and (r.ess or 0.0) >= min_ess
    ]
    return max(eligible, key=lambda r: (float(r.score or 0.0), -r.index)) if eligible else None


def exact_values(rows: list[TrialRow]) -> None:
    """Fill `exact` (ICU-Sepsis survival of the greedy policy, by dynamic programming) for finished trials."""
    from dosewise import models, pipelines

    mdp = pipelines.load_icu_sepsis_mdp()
    for row in rows:
        if row.status != "finished" or not row.policy_dir:
            continue
        policy = models.load_policy(Path(row.policy_dir))
        states = pd.DataFrame(mdp.state_features, columns=policy.feature_names)
        row.exact = float(
            pipelines.exact_policy_value(np.asarray(policy.action_probabilities(states, 0.0)), mdp)
        )


def rank_correlation(rows: list[TrialRow]) -> float | None:
    """Spearman correlation of validation estimates and exact values (None without 3+ pairs)."""
    pairs = [(r.estimate, r.exact) for r in rows if r.estimate is not None and r.exact is not None]
    if len(pairs) < 3:
        return None
    from scipy.stats import spearmanr

    value = spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic
    return float(value) if np.isfinite(value) else None


def regret(rows: list[TrialRow], winner: TrialRow | None) -> float | None:
    """Best exact value among finished trials minus the winner's (None without exact values)."""
    exact = [r.exact for r in rows if r.exact is not None]
    if winner is None or winner.exact is None or not exact:
        return None
    return float(max(exact) - winner.exact)
