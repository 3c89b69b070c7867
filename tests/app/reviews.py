"""A valid clinician review for tests (builder, d3rlpy testing_utils style)."""

from __future__ import annotations

from typing import Any

from dosewise.data_schemas import ClinicianReviewSchema


def make_review(**overrides: Any) -> ClinicianReviewSchema:
    """A review of bin 0 of `ep000` by `dr-a`; override any field."""
    fields: dict[str, Any] = {
        "reviewer": "dr-a", "episode_id": "ep000", "step": 0, "action_given": 6, "action_recommended": 12,
        "verdict": "partly", "reviewer_fluid_ml_4h": 500.0, "reviewer_norepi_eq_mcg_kg_min": 0.1,
        "comment": "MAP borderline", "policy_name": "sepsis-dosing", "policy_version": "1",
        "dataset_name": "icu_sepsis", "dataset_sha256": "ab" * 32,
    }
    fields.update(overrides)
    return ClinicianReviewSchema(**fields)
