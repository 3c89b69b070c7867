"""Boundary schemas of the OMOP CDM v5.4 tables (with the oncology extension) the chemo ETL reads.

Column names follow the OHDSI CDM v5.4 documentation (lower case, one file per table). Only the
columns the ETL needs are listed; other columns pass through unread. A missing required table or
column is an error naming it; rows that break a check go to quarantine.
"""

from __future__ import annotations

import pandera.pandas as pa

ID = "int64"


def _id(nullable: bool = False) -> pa.Column:
    return pa.Column("Int64" if nullable else ID, nullable=nullable, coerce=True)


def _date(nullable: bool = False) -> pa.Column:
    return pa.Column("datetime64[ns]", nullable=nullable, coerce=True)


OMOP_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "person": pa.DataFrameSchema(
        {
            "person_id": pa.Column(ID, unique=True, coerce=True),
            "gender_concept_id": _id(True),
            "year_of_birth": pa.Column(ID, pa.Check.in_range(1880, 2100), coerce=True),
            "month_of_birth": pa.Column(float, nullable=True, coerce=True, required=False),
            "day_of_birth": pa.Column(float, nullable=True, coerce=True, required=False),
            "gender_source_value": pa.Column(str, nullable=True, coerce=True, required=False),
        },
        name="OmopPerson",
    ),
    "drug_exposure": pa.DataFrameSchema(
        {
            "drug_exposure_id": _id(),
            "person_id": _id(),
            "drug_concept_id": _id(),
            "drug_exposure_start_date": _date(),
            "quantity": pa.Column(float, nullable=True, coerce=True),
        },
        name="OmopDrugExposure",
    ),
    "measurement": pa.DataFrameSchema(
        {
            "measurement_id": _id(),
            "person_id": _id(),
            "measurement_concept_id": _id(True),
            "measurement_date": _date(),
            "value_as_number": pa.Column(float, nullable=True, coerce=True),
            "measurement_source_value": pa.Column(str, nullable=True, coerce=True),
            "unit_source_value": pa.Column(str, nullable=True, coerce=True),
        },
        name="OmopMeasurement",
    ),
    "episode": pa.DataFrameSchema(
        {
            "episode_id": _id(),
            "person_id": _id(),
            "episode_concept_id": _id(),
            "episode_start_date": _date(),
            "episode_parent_id": _id(True),
            "episode_number": pa.Column(float, nullable=True, coerce=True),
            "episode_source_value": pa.Column(str, nullable=True, coerce=True),
        },
        name="OmopEpisode",
    ),
    "episode_event": pa.DataFrameSchema(
        {"episode_id": _id(), "event_id": _id(), "episode_event_field_concept_id": _id()},
        name="OmopEpisodeEvent",
    ),
    "observation": pa.DataFrameSchema(
        {
            "observation_id": _id(),
            "person_id": _id(),
            "observation_date": _date(),
            "observation_source_value": pa.Column(str, nullable=True, coerce=True),
            "value_as_number": pa.Column(float, nullable=True, coerce=True),
        },
        name="OmopObservation",
    ),
    "death": pa.DataFrameSchema({"person_id": _id(), "death_date": _date()}, name="OmopDeath"),
}
REQUIRED_TABLES = ("person", "drug_exposure", "measurement", "episode", "episode_event")
OPTIONAL_TABLES = ("observation", "death")
TABLE_PURPOSE = {
    "person": "sex and birth date",
    "drug_exposure": "the delivered doses",
    "measurement": "counts, chemistry, body size, tumour size and ECOG",
    "episode": "which cycles form which regimen (Treatment Regimen / Treatment Cycle episodes)",
    "episode_event": "which drug exposures belong to which cycle",
    "observation": "CTCAE grades, progression and last follow-up",
    "death": "deaths",
}
