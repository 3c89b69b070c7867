"""Boundary schema of a trial registry (mapping `design = "trial"`), after its mapping is applied.

One row per patient (a long export, e.g. one row per event type, is pivoted wide by the mapping
first). Times are days since randomisation, not dates; age is in years, not a birth date:
  - `arm`: the randomised arm (the stage-1 action), one of the mapping's `trial.arms`;
  - `death_days` + `death_event` (1 = died then, 0 = alive when last seen then): required;
  - `progression_days` + `progression_event`: recurrence / progression (optional; without the
    flag column, a recorded time is an event);
  - `followup_days`: last follow-up (optional; without it, `death_days` of a survivor is the
    censoring time);
  - `age_years`, `sex` and the mapping's declared numeric `trial.state_columns` (optional).
Any other `*_days` column (a response or a transplant day) is a day or missing.
"""

from __future__ import annotations

import pandera.pandas as pa

TRIAL_REQUIRED = ("patient_id", "arm", "death_days", "death_event")
EVENT_FLAGS = {"death_days": "death_event", "progression_days": "progression_event"}


def _flag() -> pa.Column:
    return pa.Column(float, pa.Check.isin([0.0, 1.0]), nullable=True, coerce=True, required=False)


TrialRegistrySchema = pa.DataFrameSchema(
    {
        "patient_id": pa.Column(str, nullable=False, coerce=True),
        "arm": pa.Column(str, nullable=False, coerce=True),
        "death_days": pa.Column(float, pa.Check.ge(0), nullable=False, coerce=True),
        "death_event": pa.Column(float, pa.Check.isin([0.0, 1.0]), nullable=False, coerce=True),
        "progression_event": _flag(),
        "age_years": pa.Column(float, pa.Check.in_range(0, 120), nullable=True, coerce=True, required=False),
        "sex": pa.Column(str, pa.Check.isin(["M", "F"]), nullable=True, coerce=True, required=False),
        ".+_days": pa.Column(float, pa.Check.ge(0), nullable=True, coerce=True, regex=True, required=False),
    },
    strict=False,
    name="TrialRegistrySchema",
)


def trial_schema(state_columns: list[str]) -> pa.DataFrameSchema:
    """The trial schema plus the mapping's declared numeric state columns (missing allowed)."""
    return TrialRegistrySchema.add_columns(
        {name: pa.Column(float, nullable=True, coerce=True) for name in state_columns}
    )
