"""The parts of a registry mapping config for trial records (`design = "trial"`) and long exports.

- `[pivot]`: a long export (several rows per patient, e.g. one per event type) -> one row per
  patient: `values` columns are spread by the `key` column into `<value>_<key>` columns.
- `[row_filter]`: keep only rows whose source column takes one of the listed values; the others
  are quarantined under `row_filter` (counted, never dropped silently).
- `[trial]`: the randomised arm is the stage-1 action (`arms`, in action order, with the known
  randomisation probabilities `propensity`); `state_columns` are the numeric covariates of the
  state; `[[trial.stages]]` adds later decisions (e.g. transplant or not), each made on the day
  its treatment was given, or, for patients never given it, on a declared landmark day.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from dosewise.data_schemas import StrictConfig


class PivotSpec(StrictConfig):
    """Long -> wide: one row per `index` value, `values` spread by `key` (`<value>_<key>`)."""

    index: str = Field(description="Source column identifying the patient (rows with one value are merged).")
    key: str = Field(description="Source column whose values name the wide columns (e.g. an event type).")
    values: list[str] = Field(min_length=1, description="Source columns spread per key value.")


class TrialStage(StrictConfig):
    """A later decision: treated (on `treated_days`) or not (decided on `untreated_decision_day`)."""

    name: str = Field(description="Name of the decision, e.g. `transplant`.")
    treated_days: str = Field(
        description="Registry column: day the stage's treatment was given (missing = never given)."
    )
    labels: tuple[str, str] = Field(
        description="Action labels (untreated, treated): actions 0 and 1 of this stage."
    )
    untreated_decision_day: float = Field(
        gt=0,
        description="Day on which a patient never given the treatment counts as deciding against it "
        "(a landmark: alive and followed on that day). Trial records carry no date for a decision "
        "not to treat, so this is a declared choice; the README says what it implies.",
    )
    history: list[str] = Field(
        default_factory=list,
        description="Registry `*_days` columns whose event before the decision day becomes a 0/1 state "
        "flag `<name>_by_decision` (e.g. response_days -> response_by_decision).",
    )

    @field_validator("history")
    @classmethod
    def _days_columns(cls, names: list[str]) -> list[str]:
        bad = [n for n in names if not n.endswith("_days")]
        if bad:
            raise ValueError(f"must name registry `*_days` columns. Got {bad}")
        return names


class TrialSpec(StrictConfig):
    """A randomised trial: the arm is the first action; later stages are observational."""

    arms: list[str] = Field(
        min_length=2, description="Known arm values (after [value_maps]); action k = arms[k]."
    )
    propensity: Literal["uniform", "unknown"] | list[float] = Field(
        default="uniform",
        description="Known randomisation probability of each arm: `uniform` (1 / number of arms), a "
        "list in `arms` order, or `unknown` (the OPE fits it). Written as `behaviour_prob` when every "
        "stage's probability is known (a single-stage trial).",
    )
    state_columns: list[str] = Field(
        default_factory=list,
        description="Numeric registry columns that enter the state besides age_years and sex_male "
        "(missing values are filled with the median and counted).",
    )
    stages: list[TrialStage] = Field(default_factory=list, description="Later decisions, in order.")

    @model_validator(mode="after")
    def _probabilities(self) -> TrialSpec:
        if len(set(self.arms)) != len(self.arms):
            raise ValueError(f"`trial.arms` must be distinct. Got {self.arms}")
        p = self.propensity
        if isinstance(p, list) and (len(p) != len(self.arms) or min(p) <= 0 or abs(sum(p) - 1) > 1e-6):
            raise ValueError(
                f"`trial.propensity` must give one probability > 0 per arm ({len(self.arms)}), summing to "
                f"1. Got {p}"
            )
        return self

    def arm_probabilities(self) -> list[float] | None:
        """The known randomisation probabilities in arm order, or None when unknown."""
        if self.propensity == "unknown":
            return None
        if self.propensity == "uniform":
            return [1.0 / len(self.arms)] * len(self.arms)
        return [float(x) for x in self.propensity]
