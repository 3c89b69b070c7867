"""Assemble trajectories: AI Clinician exclusions on the binned doses, actions, rewards, end flags."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dosewise.data_schemas import FunnelStep, empty_quarantine, make_quarantine
from dosewise.data_schemas import columns as c

from ..episodes import episode_ids_and_splits as shared_episode_ids
from .actions import combine_actions, discretize_doses, fit_dose_edges
from .config import SepsisPipelineConfig
from .rewards import intermediate_sofa_lactate_reward, terminal_outcome_reward


@dataclass(frozen=True)
class Exclusions:
    """Stays left after the post-binning exclusions, with their funnel steps and quarantine rows."""

    keep_stays: set[int]
    funnel: list[FunnelStep]
    quarantined: Any  # a pandas frame; on the Spark engine a Spark DataFrame of the same columns


def exclusion_rules(config: SepsisPipelineConfig) -> list[tuple[str, str]]:
    """The post-binning exclusion rules in the order they apply: (rule, description)."""
    inc = config.inclusion
    rules = [("extreme_fluid", f"no bin with more than {inc.max_fluid_ml_per_bin:g} mL IV fluid")]
    if inc.exclude_treatment_withdrawal:
        rules.append(("treatment_withdrawal",
                      "not dead within 24 h of the window end after vasopressors stopped"))
    return rules


def exclusion_funnel(config: SepsisPipelineConfig, stays_by_rule: Mapping[str, int], remaining: int
                     ) -> list[FunnelStep]:
    """The funnel steps of the exclusions from the number of stays each rule excluded."""
    funnel = []
    for rule, description in exclusion_rules(config):
        remaining -= int(stays_by_rule.get(rule, 0))
        funnel.append(FunnelStep(rule=rule, description=description, remaining=remaining))
    return funnel


def post_binning_exclusions(
    grid: pd.DataFrame, cohort: pd.DataFrame, config: SepsisPipelineConfig, remaining: int
) -> Exclusions:
    """AI Clinician exclusions: extreme fluid in one bin; death soon after vasopressors were stopped.

    Each stay is judged on its own rows, so the rows of any set of whole stays give the same result
    for those stays (the Spark engine runs this on groups of stays)."""
    inc = config.inclusion
    parts: list[pd.DataFrame] = []
    by_rule: dict[str, int] = {}
    keep = set(cohort["stay_id"].tolist())
    extreme = set(grid.loc[grid["fluid_ml"] > inc.max_fluid_ml_per_bin, "stay_id"].tolist()) & keep
    rules: list[tuple[str, set[int]]] = [("extreme_fluid", extreme)]
    if inc.exclude_treatment_withdrawal:
        last = grid.groupby("stay_id").tail(1).set_index("stay_id")["norepi_eq_mcg_kg_min"]
        ever = grid.groupby("stay_id")["norepi_eq_mcg_kg_min"].max()
        c_ = cohort.set_index("stay_id")
        died_soon = c_["deathtime"].notna() & (c_["deathtime"] <= c_["window_end"] + pd.Timedelta(hours=24))
        stopped = (ever.reindex(c_.index).fillna(0) > 0) & (last.reindex(c_.index).fillna(0) == 0)
        rules.append(("treatment_withdrawal", set(c_.index[died_soon & stopped].tolist()) & keep))
    descriptions = dict(exclusion_rules(config))
    for rule, stays in rules:
        description = descriptions[rule]
        stays = stays & keep
        rows = grid[grid["stay_id"].isin(stays)].rename(columns={"bin": c.STEP})
        parts.append(
            make_quarantine(
                rows,
                stage="states",
                rule=rule,
                column=None,
                reason=f"episode excluded: {description} fails",
                key_columns=[c.STEP],
                id_column="stay_id",
            )
        )
        keep -= stays
        by_rule[rule] = len(stays)
    nonempty = [p for p in parts if not p.empty]
    return Exclusions(
        keep, exclusion_funnel(config, by_rule, remaining),
        pd.concat(nonempty, ignore_index=True) if nonempty else empty_quarantine(["stay_id"]),
    )


def add_actions(
    grid: pd.DataFrame, train: pd.Series, fluid_col: str, n_bins: int
) -> tuple[pd.DataFrame, dict[str, list[float]]]:
    """Fit edges on the train rows, then add the dose bins and the combined 0..n^2-1 action."""
    edges = {
        fluid_col: fit_dose_edges(grid.loc[train, fluid_col], n_bins),
        c.NOREPI_EQ_MCG_KG_MIN: fit_dose_edges(grid.loc[train, c.NOREPI_EQ_MCG_KG_MIN], n_bins),
    }
    return apply_actions(grid, edges, fluid_col, n_bins), edges


def apply_actions(grid: pd.DataFrame, edges: Mapping[str, list[float]], fluid_col: str, n_bins: int
                  ) -> pd.DataFrame:
    """The dose bins and the combined 0..n^2-1 action for edges fitted before (row by row)."""
    out = grid.copy()
    out[c.FLUID_BIN] = discretize_doses(out[fluid_col], edges[fluid_col])
    out[c.VASO_BIN] = discretize_doses(out[c.NOREPI_EQ_MCG_KG_MIN], edges[c.NOREPI_EQ_MCG_KG_MIN])
    out[c.ACTION] = combine_actions(out[c.FLUID_BIN].to_numpy(), out[c.VASO_BIN].to_numpy(), n_bins)
    return out


def add_rewards_and_ends(
    grid: pd.DataFrame, cohort: pd.DataFrame, config: SepsisPipelineConfig
) -> pd.DataFrame:
    """Terminal (death or discharge inside the window) vs timeout, and the configured rewards."""
    out = grid.merge(
        cohort[["stay_id", "end_reason", config.reward.outcome]],
        on="stay_id",
        how="left",
        validate="many_to_one",
    )
    last = out["bin"] == out.groupby("stay_id")["bin"].transform("max")
    out[c.TERMINAL] = last & out["end_reason"].isin(["death", "discharge"])
    out[c.TIMEOUT] = last & (out["end_reason"] == "timeout")
    reward = terminal_outcome_reward(last, out[config.reward.outcome], config.reward.terminal_reward)
    if config.reward.intermediate_shaping:
        r = config.reward
        reward = reward + intermediate_sofa_lactate_reward(out, r.c0, r.c1, r.c2)
    out[c.REWARD] = reward.astype("float64")
    return out.drop(columns=["end_reason", config.reward.outcome])


def reward_description(config: SepsisPipelineConfig) -> str:
    """One sentence for the manifest."""
    r = config.reward
    text = f"+{r.terminal_reward:g} on the last step if alive, -{r.terminal_reward:g} if dead ({r.outcome})"
    if r.intermediate_shaping:
        text += f"; plus Raghu 2017 SOFA/lactate shaping (c0={r.c0}, c1={r.c1}, c2={r.c2})"
    return text


def finite_states(frame: pd.DataFrame, states: list[str]) -> pd.DataFrame:
    """Replace inf or NaN left by a derived ratio with 0: the state contract needs finite floats."""
    out = frame.copy()
    out[states] = out[states].replace([np.inf, -np.inf], np.nan).fillna(0.0)
    return out


def episode_ids_and_splits(
    cohort: pd.DataFrame, config: SepsisPipelineConfig, salt: str
) -> tuple[list[str], pd.DataFrame]:
    """Episode ids (salted pseudonyms unless raw ids are configured) and patient-level seeded splits."""
    return shared_episode_ids(
        cohort["stay_id"].tolist(), cohort["subject_id"].tolist(),
        pseudonymize=config.output.pseudonymize_ids, salt=salt,
        fractions=config.output.split_fractions, seed=config.seed, raw_prefix="stay_",
    )
