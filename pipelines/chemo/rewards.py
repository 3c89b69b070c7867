"""Rewards and episode ends of chemotherapy trajectories, shared by the ETL and the simulator's truth.

Per cycle: minus `penalty_febrile_neutropenia` for febrile neutropenia and minus `penalty_grade3`
when any configured CTCAE category reached grade >= 3 in that cycle. On the last cycle: plus
`outcome_reward` when the patient is alive (or alive and progression-free) at the horizon.
Ends: death by the horizon -> terminal; outcome known at the horizon -> `episode.regimen_end`;
lost to follow-up before the horizon -> timeout (no outcome reward: it is unknown).

With `reward.censoring = "ipcw_km"` the return estimates the value had no one been lost to
follow-up: every reward is divided by G(t-), the Kaplan-Meier probability of still being followed
at the day t it is recorded (a cycle's penalties: the cycle's scheduled day, the decision day, as a
cycle is in the records when its patient was followed then; the outcome: the horizon), and every
episode ends terminal (a censored patient's later rewards are 0, their weight carried by the
others). Under censoring independent of the outcome given nothing (G pooled) or the first cycle's
action bin (`censoring_strata = "first_action"`), the mean return is then unbiased for the
full-outcome value (Robins & Rotnitzky 1992; Bang & Tsiatis 2000; `censoring.py`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from .censoring import censoring_survival_curve
from .config import ChemoEpisodeConfig, ChemoRewardConfig


def cycle_penalties(cycles: pd.DataFrame, config: ChemoRewardConfig) -> np.ndarray:
    """Per-cycle toxicity penalties (<= 0) from the grades recorded for that cycle."""
    grade3 = np.zeros(len(cycles), dtype=bool)
    for cat in config.penalised_categories:
        grade3 |= cycles[f"grade_{cat}"].fillna(0).to_numpy() >= 3
    fn = cycles["grade_febrile_neutropenia"].fillna(0).to_numpy() >= 1
    return np.asarray(-config.penalty_grade3 * grade3 - config.penalty_febrile_neutropenia * fn, dtype=float)


def patient_outcomes(patients: pd.DataFrame, config: ChemoRewardConfig) -> pd.DataFrame:
    """Per patient: `end_reason` (death / horizon / censored), `success` at the horizon and
    `endpoint_days` (days from the first cycle to the end of follow-up of the outcome: the death or,
    for `progression_free`, the progression by the horizon, the last follow-up when censored, else
    the horizon).

    `patients` holds `first_cycle_date`, `death_date`, `progression_date` and `last_followup_date`.
    """
    horizon = patients["first_cycle_date"] + pd.Timedelta(days=config.horizon_days)
    died = patients["death_date"].notna() & (patients["death_date"] <= horizon)
    followed = patients["last_followup_date"].fillna(patients["death_date"]) >= horizon
    progressed = patients["progression_date"].notna() & (patients["progression_date"] <= horizon)
    end = np.where(died, "death", np.where(followed, "horizon", "censored"))
    success = ~died & followed
    failure_date = patients["death_date"].where(died)
    if config.outcome == "progression_free":
        success &= ~progressed
        failure_date = failure_date.fillna(patients["progression_date"].where(progressed & ~died))
        end = np.where(progressed & (end == "censored"), "progression", end)
    start = patients["first_cycle_date"]
    days = np.where(
        end == "censored",
        (patients["last_followup_date"] - start).dt.days.to_numpy(np.float64),
        np.minimum((failure_date - start).dt.days.fillna(config.horizon_days).to_numpy(np.float64),
                   config.horizon_days),
    )
    return pd.DataFrame(
        {
            "patient_id": patients["patient_id"].to_numpy(),
            "end_reason": end,
            "success": success.to_numpy(bool),
            "endpoint_days": days,
        }
    )


CensoringCurves = dict[int, Callable[[np.ndarray], np.ndarray]]


def censoring_curves(outcomes: pd.DataFrame, strata: np.ndarray) -> CensoringCurves:
    """G per stratum: the reverse Kaplan-Meier of the follow-up of the patients of `outcomes`
    (from `patient_outcomes`; `strata` aligned with it). A run in patient batches fits them once
    on all patients and passes them to every batch."""
    censored = outcomes["end_reason"].to_numpy() == "censored"
    time = outcomes["endpoint_days"].to_numpy(np.float64)
    return {
        int(s): censoring_survival_curve(time[strata == s], ~censored[strata == s]) for s in np.unique(strata)
    }


def censoring_weights(
    outcomes: pd.DataFrame,
    strata: np.ndarray,
    days: np.ndarray,
    patient_of_day: np.ndarray,
    curves: CensoringCurves | None = None,
) -> np.ndarray:
    """1 / G(day-) for each (patient, day) pair, G the reverse Kaplan-Meier of the follow-up in the
    patient's stratum (`outcomes` from `patient_outcomes`, `strata` aligned with it; `curves`
    fitted beforehand, else on these patients)."""
    weights = np.ones(len(days))
    row_of = pd.Index(outcomes["patient_id"].to_numpy()).get_indexer(patient_of_day)
    stratum_of = strata[row_of]
    fitted = curves if curves is not None else censoring_curves(outcomes, strata)
    for stratum in np.unique(strata):
        g = fitted[int(stratum)]
        at = stratum_of == stratum
        weights[at] = 1.0 / np.maximum(g(days[at]), 1e-12)
    return weights


def rewards_and_ends(
    cycles: pd.DataFrame,
    outcomes: pd.DataFrame,
    reward: ChemoRewardConfig,
    episode: ChemoEpisodeConfig,
    decision_days: np.ndarray | None = None,
    curves: CensoringCurves | None = None,
) -> pd.DataFrame:
    """`reward`, `terminal`, `timeout` for each row of `cycles` (sorted by patient and cycle).

    `curves`: G per stratum fitted on all patients of the run (`censoring_curves`), for a run in
    patient batches; None fits them on the patients of `outcomes`.

    `decision_days` (days from the patient's first cycle to each cycle's scheduled start) place the
    cycle penalties in time for `reward.censoring = "ipcw_km"`; None: the records hold no loss to
    follow-up during the cycles (G is 1 there), as in the simulator's truth.
    """
    last = cycles["cycle_number"] == cycles.groupby("patient_id", sort=False)["cycle_number"].transform("max")
    info = outcomes.set_index("patient_id").reindex(cycles["patient_id"].to_numpy())
    end = info["end_reason"].to_numpy()
    success = info["success"].to_numpy(bool)
    last_np = last.to_numpy(bool)
    terminal = last_np & ((end == "death") | ((end == "horizon") & (episode.regimen_end == "terminal")))
    timeout = last_np & ~terminal
    penalties = cycle_penalties(cycles, reward)
    outcome = np.where(last_np & success, reward.outcome_reward, 0.0)
    if reward.censoring == "ipcw_km":
        ids = cycles["patient_id"].to_numpy()
        strata = _censoring_strata(cycles, outcomes, reward)
        if decision_days is not None:
            days = np.asarray(decision_days, float)
            penalties = penalties * censoring_weights(outcomes, strata, days, ids, curves)
        horizon = np.full(len(cycles), float(reward.horizon_days))
        outcome = outcome * censoring_weights(outcomes, strata, horizon, ids, curves)
        terminal = last_np
        timeout = np.zeros(len(cycles), dtype=bool)
    values = penalties + outcome
    return pd.DataFrame({"reward": values, "terminal": terminal, "timeout": timeout}, index=cycles.index)


def _censoring_strata(cycles: pd.DataFrame, outcomes: pd.DataFrame, reward: ChemoRewardConfig) -> np.ndarray:
    """Censoring stratum of each patient of `outcomes`: 0 (pooled) or the first cycle's action bin."""
    if reward.censoring_strata == "none" or "action" not in cycles.columns:
        return np.zeros(len(outcomes), dtype=np.int64)
    return censoring_strata(first_actions(cycles), outcomes, reward)


def first_actions(cycles: pd.DataFrame) -> pd.Series:
    """Each patient's first cycle action bin (`cycles` sorted by patient and cycle, with `action`)."""
    return cycles.groupby("patient_id", sort=False)["action"].first()


def censoring_strata(first: pd.Series, outcomes: pd.DataFrame, reward: ChemoRewardConfig) -> np.ndarray:
    """Censoring stratum of each patient of `outcomes` from the first actions `first` (by patient)."""
    if reward.censoring_strata == "none":
        return np.zeros(len(outcomes), dtype=np.int64)
    return np.asarray(first.reindex(outcomes["patient_id"].to_numpy()).fillna(-1).to_numpy(np.int64))


def reward_description(reward: ChemoRewardConfig, episode: ChemoEpisodeConfig) -> str:
    """One sentence for the manifest."""
    what = "alive" if reward.outcome == "survival" else "alive and progression-free"
    strata = "pooled" if reward.censoring_strata == "none" else "within the first cycle action bin"
    censoring = (
        "loss to follow-up is a timeout"
        if reward.censoring == "timeout"
        else "each reward is divided by the Kaplan-Meier probability of still being followed on the day "
        f"it is recorded ({strata}"
        "; IPCW), and every episode ends terminal"
    )
    return (
        f"+{reward.outcome_reward:g} on the last cycle if {what} at day {reward.horizon_days} from the "
        f"first cycle; -{reward.penalty_febrile_neutropenia:g} per cycle with febrile neutropenia; "
        f"-{reward.penalty_grade3:g} per cycle with CTCAE grade >= 3 in "
        f"{', '.join(reward.penalised_categories)}. Death by the horizon is terminal; a known outcome "
        f"at the horizon ends as {episode.regimen_end}; {censoring}. Undiscounted."
    )
