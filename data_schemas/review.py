"""`ClinicianReviewSchema`: one clinician's judgement of one recommendation, as stored.

A review names who judged what (reviewer, stay, bin), what was given and what the policy
recommended (action indices, and doses in their units where the dataset has them), the verdict,
the dose the reviewer would have given, and the provenance (policy name and version, dataset hash).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Verdict = Literal["agree", "partly", "disagree"]
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
    step: int = Field(ge=0, description="Bin (step) of the episode under review.")
    bin_start: datetime | None = Field(default=None, description="Start time of the bin, if known.")
    action_given: int = Field(ge=0, description="Discrete action the clinicians took in the bin.")
    action_recommended: int = Field(ge=0, description="Discrete action the policy recommended.")
    given_fluid_ml_4h: float | None = Field(default=None, ge=0, description="IV fluid given, mL per 4 h.")
    given_norepi_eq_mcg_kg_min: float | None = Field(
        default=None, ge=0, description="Vasopressor given, norepinephrine-equivalent mcg/kg/min."
    )
    recommended_fluid_ml_4h: float | None = Field(
        default=None, ge=0, description="IV fluid recommended, mL per 4 h."
    )
    recommended_norepi_eq_mcg_kg_min: float | None = Field(
        default=None, ge=0, description="Vasopressor recommended, norepinephrine-equivalent mcg/kg/min."
    )
    verdict: Verdict = Field(description="agree / partly / disagree with the recommendation.")
    reviewer_fluid_ml_4h: float = Field(ge=0, le=20000, description="IV fluid the reviewer would give.")
    reviewer_norepi_eq_mcg_kg_min: float = Field(
        ge=0, le=10, description="Vasopressor the reviewer would give (norepinephrine-equivalent)."
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

    @field_validator("reviewed_at", "bin_start")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Store times in UTC; a naive time is taken to be UTC already."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: Stored column order (export files follow it).
REVIEW_COLUMNS: tuple[str, ...] = tuple(ClinicianReviewSchema.model_fields)
