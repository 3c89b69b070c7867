"""`ClinicianReviewSchema`: one clinician's judgement of one recommendation, as stored.

A review names who judged what (reviewer, stay, bin), what was given and what the policy
recommended (action indices, and doses in their units where the dataset has them), the verdict,
the dose the reviewer would have given, and the provenance (policy name and version, dataset hash).

Two kinds of dataset, two kinds of "dose you would give": a sepsis review holds IV fluid and
vasopressor (`reviewer_fluid_ml_4h`, `reviewer_norepi_eq_mcg_kg_min`); a chemotherapy review holds
the dose as a percentage of the planned dose per m2 and the delay in days before the cycle
(`reviewer_dose_pct_of_planned`, `reviewer_delay_days`), beside what was given and the recommended
relative dose intensity. A review is exactly one kind: both fields of its kind, none of the other.
The chemotherapy fields come last, so sepsis reviews keep their stored form (and hash-chain digest).

Every number is range-checked here, at the boundary: integers fit the database's 32-bit columns and
doses are finite (no `inf`/`nan`) and within physical limits, so a bad value is a validation error
with its field name, never an `OverflowError` from the database driver. Text may not hold NUL
bytes (PostgreSQL cannot store them and they corrupt exports).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Verdict = Literal["agree", "partly", "disagree"]

#: Upper bounds: a 4 h step index past 100 000 (45 years) or an action index past 10 000 is not data.
MAX_STEP = 100_000
MAX_ACTION = 10_000
#: Physical ceilings for doses read from a dataset (far above any real bin; above them is a data error).
MAX_DATA_FLUID_ML_4H = 100_000.0
MAX_DATA_NOREPI_EQ_MCG_KG_MIN = 100.0
VERDICTS: tuple[Verdict, ...] = ("agree", "partly", "disagree")
#: A reviewer's chemotherapy dose: 0 % holds the cycle; above 150 % of the planned dose per m2 is not
#: a dose modification (escalation beyond one level is not used for cytotoxics, e.g. ASCO 2012 dosing).
MAX_REVIEW_DOSE_PCT = 150.0
#: A cycle delayed by more than 6 weeks is a treatment break, not a delay (docetaxel label: stop if
#: counts do not recover within 2 weeks; trials allow up to ~3-6 weeks).
MAX_REVIEW_DELAY_DAYS = 42
#: Ceilings for chemotherapy values read from a dataset (above them is a data error).
MAX_DATA_DOSE_PCT = 1000.0
MAX_DATA_DELAY_DAYS = 3650.0
MAX_DATA_RDI_FRACTION = 10.0
SEPSIS_REVIEW_FIELDS = ("reviewer_fluid_ml_4h", "reviewer_norepi_eq_mcg_kg_min")
CHEMO_REVIEW_FIELDS = ("reviewer_dose_pct_of_planned", "reviewer_delay_days")
#: Stored only by chemotherapy reviews (a sepsis review's digest covers none of them).
CHEMO_COLUMNS = ("given_dose_pct_of_planned", "given_delay_days", "recommended_rdi_fraction",
                 *CHEMO_REVIEW_FIELDS)


class ClinicianReviewSchema(BaseModel):
    """A validated clinician review; the review store accepts nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    review_id: str = Field(
        default_factory=lambda: uuid.uuid4().hex, min_length=8, max_length=64,
        description="Unique id of this review (idempotent resubmission).",
    )
    reviewer: str = Field(min_length=1, max_length=200, description="Who reviewed: the login identity.")
    episode_id: str = Field(min_length=1, max_length=200, description="Pseudonymous stay/episode id.")
    step: int = Field(ge=0, le=MAX_STEP, description="Bin (step) of the episode under review.")
    bin_start: datetime | None = Field(default=None, description="Start time of the bin, if known.")
    action_given: int = Field(
        ge=0, le=MAX_ACTION, description="Discrete action the clinicians took in the bin."
    )
    action_recommended: int = Field(
        ge=0, le=MAX_ACTION, description="Discrete action the policy recommended."
    )
    given_fluid_ml_4h: float | None = Field(
        default=None, ge=0, le=MAX_DATA_FLUID_ML_4H, allow_inf_nan=False,
        description="IV fluid given, mL per 4 h.",
    )
    given_norepi_eq_mcg_kg_min: float | None = Field(
        default=None, ge=0, le=MAX_DATA_NOREPI_EQ_MCG_KG_MIN, allow_inf_nan=False,
        description="Vasopressor given, norepinephrine-equivalent mcg/kg/min.",
    )
    recommended_fluid_ml_4h: float | None = Field(
        default=None, ge=0, le=MAX_DATA_FLUID_ML_4H, allow_inf_nan=False,
        description="IV fluid recommended, mL per 4 h.",
    )
    recommended_norepi_eq_mcg_kg_min: float | None = Field(
        default=None, ge=0, le=MAX_DATA_NOREPI_EQ_MCG_KG_MIN, allow_inf_nan=False,
        description="Vasopressor recommended, norepinephrine-equivalent mcg/kg/min.",
    )
    verdict: Verdict = Field(description="agree / partly / disagree with the recommendation.")
    reviewer_fluid_ml_4h: float | None = Field(
        default=None, ge=0, le=20000, allow_inf_nan=False,
        description="IV fluid the reviewer would give (sepsis reviews).",
    )
    reviewer_norepi_eq_mcg_kg_min: float | None = Field(
        default=None, ge=0, le=10, allow_inf_nan=False,
        description="Vasopressor the reviewer would give, norepinephrine-equivalent (sepsis reviews).",
    )
    comment: str = Field(default="", max_length=5000, description="Free-text reasoning.")
    reviewed_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), description="When the review was submitted (UTC)."
    )
    policy_name: str = Field(min_length=1, max_length=200, description="Registered model or policy name.")
    policy_version: str = Field(min_length=1, max_length=100, description="Registry version of the policy.")
    dataset_name: str = Field(default="", max_length=500, description="Dataset folder name.")
    dataset_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the reviewed trajectories file."
    )
    given_dose_pct_of_planned: float | None = Field(
        default=None, ge=0, le=MAX_DATA_DOSE_PCT, allow_inf_nan=False,
        description="Chemotherapy: dose given, % of the planned dose per m2.",
    )
    given_delay_days: float | None = Field(
        default=None, ge=0, le=MAX_DATA_DELAY_DAYS, allow_inf_nan=False,
        description="Chemotherapy: days the cycle started after its scheduled date.",
    )
    recommended_rdi_fraction: float | None = Field(
        default=None, ge=0, le=MAX_DATA_RDI_FRACTION, allow_inf_nan=False,
        description="Chemotherapy: relative dose intensity recommended (1: the planned dose on time).",
    )
    reviewer_dose_pct_of_planned: float | None = Field(
        default=None, ge=0, le=MAX_REVIEW_DOSE_PCT, allow_inf_nan=False,
        description="Chemotherapy: dose the reviewer would give, % of the planned dose per m2 (0 holds).",
    )
    reviewer_delay_days: int | None = Field(
        default=None, ge=0, le=MAX_REVIEW_DELAY_DAYS,
        description="Chemotherapy: days the reviewer would delay the cycle (0 = on schedule).",
    )

    @field_validator("reviewer", "episode_id", "comment", "policy_name", "policy_version", "dataset_name")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        """NUL bytes cannot be stored in PostgreSQL text and break exports: refuse them."""
        if "\x00" in value:
            raise ValueError("must not contain NUL bytes (\\x00)")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ClinicianReviewSchema:
        """Sepsis (fluid + vasopressor) or chemotherapy (dose % + delay days), complete, never both."""
        sepsis = [getattr(self, f) is not None for f in SEPSIS_REVIEW_FIELDS]
        chemo = [getattr(self, f) is not None for f in CHEMO_REVIEW_FIELDS]
        if (all(sepsis) and not any(chemo)) or (all(chemo) and not any(sepsis)):
            return self
        names = SEPSIS_REVIEW_FIELDS + CHEMO_REVIEW_FIELDS
        filled = [f for f, v in zip(names, sepsis + chemo, strict=True) if v]
        raise ValueError(
            f"the reviewer's dose must be either {' and '.join(SEPSIS_REVIEW_FIELDS)} (sepsis) or "
            f"{' and '.join(CHEMO_REVIEW_FIELDS)} (chemotherapy), both fields of one kind. "
            f"Got {', '.join(filled) or 'none'}")

    @property
    def is_chemo(self) -> bool:
        """A chemotherapy review (dose % of planned and delay days)."""
        return self.reviewer_dose_pct_of_planned is not None

    @field_validator("reviewed_at", "bin_start")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Store times in UTC; a naive time is taken to be UTC already."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: Stored column order (export files follow it).
REVIEW_COLUMNS: tuple[str, ...] = tuple(ClinicianReviewSchema.model_fields)
