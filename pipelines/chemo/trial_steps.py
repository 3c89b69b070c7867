"""Trial patients -> decision steps: the randomised arm (step 0), then any declared later stage.

Step 0 is randomisation (day 0): the state is the baseline covariates, the action the arm index.
A later stage (e.g. transplant or not) is a step only for patients whose endpoint is still open
on its decision day: the day the treatment was given, or, never given before the horizon, the
stage's declared landmark day. Its action is 0 (untreated) or 1 (treated); the state adds the
stage number, which arm was given, and `<event>_by_decision` flags for the declared history
events (response, progression) before that day. Days since randomisation stay out of the state:
for untreated patients that day is the declared landmark, so it would give the action away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dosewise.data_schemas import ConfigError
from dosewise.data_schemas import columns as c

from .trial import arm_index
from .trial_mapping import TrialSpec

ORIGIN = pd.Timestamp("1970-01-01")  # trial exports carry days since randomisation, not dates


def slug(label: str) -> str:
    """A column-name-safe form of an arm label: 'Lev+5FU' -> 'lev_5fu'."""
    return re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_")


@dataclass
class TrialSteps:
    """Trajectory rows (with `patient_id` and `decision_day`), their state columns and action labels."""

    frame: pd.DataFrame
    state_columns: list[str]
    stage_labels: list[list[str]]
    filled: dict[str, int] = field(default_factory=dict)


def _baseline(patients: pd.DataFrame, spec: TrialSpec) -> tuple[pd.DataFrame, dict[str, int]]:
    """Baseline covariates: age, sex (male = 1) and the declared state columns, medians filled."""
    out = pd.DataFrame(index=patients.index)
    if "age_years" in patients:
        out["age_years"] = patients["age_years"].astype(np.float64)
    if "sex" in patients:
        out["sex_male"] = (patients["sex"] == "M").astype(np.float64).where(patients["sex"].notna())
    for col in spec.state_columns:
        out[col] = patients[col].astype(np.float64)
    filled = {col: int(out[col].isna().sum()) for col in out if out[col].isna().any()}
    for col in filled:
        median = out[col].median()
        out[col] = out[col].fillna(0.0 if np.isnan(median) else median)
    return out, filled


def _stage_rows(
    patients: pd.DataFrame, spec: TrialSpec, time: np.ndarray, horizon: float
) -> list[pd.DataFrame]:
    """One frame per later stage: patient index, decision day, action and history flags."""
    arms = arm_index(patients, spec)
    reached = np.ones(len(patients), bool)
    frames = []
    for number, stage in enumerate(spec.stages, start=1):
        if stage.untreated_decision_day >= horizon:
            raise ConfigError(
                f"Stage `{stage.name}`: untreated_decision_day {stage.untreated_decision_day:g} must be "
                f"before the reward horizon ({horizon:g} days).",
                "Lower the landmark day or raise reward.horizon_days.",
            )
        given = patients[stage.treated_days].to_numpy(np.float64)
        treated = ~np.isnan(given) & (given < horizon)
        day = np.where(treated, given, stage.untreated_decision_day)
        reached &= np.where(treated, time >= day, time > day)
        rows = pd.DataFrame({"_row": np.flatnonzero(reached), "stage": float(number)})
        rows["decision_day"] = day[reached]
        rows[c.ACTION] = treated[reached].astype(np.int64)
        for h in stage.history:
            event_day = patients[h].to_numpy(np.float64)[reached]
            rows[f"{h.removesuffix('_days')}_by_decision"] = (event_day <= rows["decision_day"]).astype(float)
        for k, arm in enumerate(spec.arms):
            rows[f"arm_{slug(arm)}"] = (arms[reached] == k).astype(float)
        frames.append(rows)
    return frames


def decision_steps(patients: pd.DataFrame, spec: TrialSpec, time: np.ndarray, horizon: float) -> TrialSteps:
    """Every patient's steps, sorted by patient and step (see module doc)."""
    baseline, filled = _baseline(patients, spec)
    first = pd.DataFrame(
        {
            "_row": np.arange(len(patients)),
            "stage": 0.0,
            "decision_day": 0.0,
            c.ACTION: arm_index(patients, spec),
        }
    )
    later = _stage_rows(patients, spec, time, horizon)
    steps = pd.concat([first, *later], ignore_index=True).fillna(0.0)
    steps[c.ACTION] = steps[c.ACTION].astype(np.int64)
    extra = [col for col in steps.columns if col not in ("_row", "decision_day", c.ACTION)]
    if not spec.stages:
        extra = []  # one decision: the stage number and history would be constant
    steps = pd.concat([steps, baseline.iloc[steps["_row"].to_numpy()].reset_index(drop=True)], axis=1)
    steps["patient_id"] = patients["patient_id"].to_numpy()[steps["_row"].to_numpy()]
    steps = steps.sort_values(["_row", "stage"], kind="stable").reset_index(drop=True)
    steps[c.STEP] = steps.groupby("_row", sort=False).cumcount().astype(np.int64)
    steps[c.BIN_START] = ORIGIN + pd.to_timedelta(steps["decision_day"], unit="D")
    labels = [list(spec.arms)] + [list(stage.labels) for stage in spec.stages]
    return TrialSteps(steps.drop(columns="_row"), [*extra, *baseline.columns], labels, filled)
