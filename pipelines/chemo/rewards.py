"""Rewards and episode ends of chemotherapy trajectories, shared by the ETL and the simulator's truth.

Per cycle: minus `penalty_febrile_neutropenia` for febrile neutropenia and minus `penalty_grade3`
when any configured CTCAE category reached grade >= 3 in that cycle. On the last cycle: plus
`outcome_reward` when the patient is alive (or alive and progression-free) at the horizon.
Ends: death by the horizon -> terminal; outcome known at the horizon -> `episode.regimen_end`;
lost to follow-up before the horizon -> timeout (no outcome reward: it is unknown).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import ChemoEpisodeConfig, ChemoRewardConfig


def cycle_penalties(cycles: pd.DataFrame, config: ChemoRewardConfig) -> np.ndarray:
    """Per-cycle toxicity penalties (<= 0) from the grades recorded for that cycle."""
    grade3 = np.zeros(len(cycles), dtype=bool)
    for cat in config.penalised_categories:
        grade3 |= cycles[f"grade_{cat}"].fillna(0).to_numpy() >= 3
    fn = cycles["grade_febrile_neutropenia"].fillna(0).to_numpy() >= 1
    return np.asarray(-config.penalty_grade3 * grade3 - config.penalty_febrile_neutropenia * fn, dtype=float)


def patient_outcomes(patients: pd.DataFrame, config: ChemoRewardConfig) -> pd.DataFrame:
    """Per patient: `end_reason` (death / horizon / censored) and `success` at the horizon.

    `patients` holds `first_cycle_date`, `death_date`, `progression_date` and `last_followup_date`.
    """
    horizon = patients["first_cycle_date"] + pd.Timedelta(days=config.horizon_days)
    died = patients["death_date"].notna() & (patients["death_date"] <= horizon)
    followed = patients["last_followup_date"].fillna(patients["death_date"]) >= horizon
    progressed = patients["progression_date"].notna() & (patients["progression_date"] <= horizon)
    end = np.where(died, "death", np.where(followed, "horizon", "censored"))
    success = ~died & followed
    if config.outcome == "progression_free":
        success &= ~progressed
    return pd.DataFrame(
        {
            "patient_id": patients["patient_id"].to_numpy(),
            "end_reason": end,
            "success": success.to_numpy(bool),
        }
    )


def rewards_and_ends(
    cycles: pd.DataFrame, outcomes: pd.DataFrame, reward: ChemoRewardConfig, episode: ChemoEpisodeConfig
) -> pd.DataFrame:
    """`reward`, `terminal`, `timeout` for each row of `cycles` (sorted by patient and cycle)."""
    last = cycles["cycle_number"] == cycles.groupby("patient_id", sort=False)["cycle_number"].transform("max")
    info = outcomes.set_index("patient_id").reindex(cycles["patient_id"].to_numpy())
    end = info["end_reason"].to_numpy()
    success = info["success"].to_numpy(bool)
    last_np = last.to_numpy(bool)
    terminal = last_np & ((end == "death") | ((end == "horizon") & (episode.regimen_end == "terminal")))
    timeout = last_np & ~terminal
    values = cycle_penalties(cycles, reward) + np.where(last_np & success, reward.outcome_reward, 0.0)
    return pd.DataFrame({"reward": values, "terminal": terminal, "timeout": timeout}, index=cycles.index)


def reward_description(reward: ChemoRewardConfig, episode: ChemoEpisodeConfig) -> str:
    """One sentence for the manifest."""
    what = "alive" if reward.outcome == "survival" else "alive and progression-free"
    return (
        f"+{reward.outcome_reward:g} on the last cycle if {what} at day {reward.horizon_days} from the "
        f"first cycle; -{reward.penalty_febrile_neutropenia:g} per cycle with febrile neutropenia; "
        f"-{reward.penalty_grade3:g} per cycle with CTCAE grade >= 3 in "
        f"{', '.join(reward.penalised_categories)}. Death by the horizon is terminal; a known outcome "
        f"at the horizon ends as {episode.regimen_end}; loss to follow-up is a timeout. Undiscounted."
    )
