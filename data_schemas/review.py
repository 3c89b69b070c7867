"""`ClinicianReviewSchema`: one clinician's judgement of one recommendation, as stored.

A review names who judged what (reviewer, stay, bin), what was given and what the policy
recommended (action indices, and doses in their units where the dataset has them), the verdict,
the dose the reviewer would have given, and the provenance (policy name and version, dataset hash).

Every number is range-checked here, at the boundary: integers fit the database's 32-bit columns and
doses are finite (no `inf`/`nan`) and within physical limits, so a bad value is a validation error
with its field name, never an `OverflowError` from the database driver. Text may not hold NUL
bytes (PostgreSQL cannot store them and they corrupt exports).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Verdict = Literal["agree", "partly", "disagree"]

#: Upper bounds: a 4 h step index past 100 000 (45 years) or an action index past 10 000 is not data.
MAX_STEP = 100_000
MAX_ACTION = 10_000
#: Physical ceilings for doses read from a dataset (far above any real bin; above them is a data error).
MAX_DATA_FLUID_ML_4H = 100_000.0
MAX_DATA_NOREPI_EQ_MCG_KG_MIN = 100.0
VERDICTS: tuple[Verdict, ...] = ("agree", "partly", "disagree")


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
    reviewer_fluid_ml_4h: float = Field(
        ge=0, le=20000, allow_inf_nan=False, description="IV fluid the reviewer would give."
    )
    reviewer_norepi_eq_mcg_kg_min: float = Field(
        ge=0, le=10, allow_inf_nan=False,
        description="Vasopressor the reviewer would give (norepinephrine-equivalent).",
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

    @field_validator("reviewer", "episode_id", "comment", "policy_name", "policy_version", "dataset_name")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        """NUL bytes cannot be stored in PostgreSQL text and break exports: refuse them."""
        if "\x00" in value:
            raise ValueError("must not contain NUL bytes (\\x00)")
        return value

    @field_validator("reviewed_at", "bin_start")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Store times in UTC; a naive time is taken to be UTC already."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: Stored column order (export files follow it).
REVIEW_COLUMNS: tuple[str, ...] = tuple(ClinicianReviewSchema.model_fields)
