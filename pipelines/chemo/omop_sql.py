"""Checked OMOP tables (DuckDB) -> cycle episodes with doses, and measurements by the concept map, in SQL.

Cycles are Treatment Cycle episodes whose parent is a Treatment Regimen episode (its
`episode_source_value` names the regimen, rules/chemo_regimens.csv gives the planned dose per
m2 and interval); episode_event rows with field drug_exposure.drug_exposure_id link each cycle to
its drug exposures (delivered mg = quantity). Measurements are found by the cited concept map
(rules/omop_concepts.csv: concept id where checked, else the LOINC or local source value), kept
once when duplicated, dropped to quarantine when dated outside the patient's life or in a unit
rules/chemo_units.csv does not know. Ties keep file order (`_row`), as a stable sort would.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dosewise.data_schemas import BadInputError, make_quarantine
from dosewise.data_schemas.raw_registry import DELIVERED_PREFIX, PLANNED_PREFIX
from dosewise.data_schemas.sql_checks import literal, quote

from ..sepsis.stage_sql import run_sql_file
from ..simulators.oncology_omop import concept_map
from .cycles import UNKNOWN_DRUG_EXPOSURES, regimen_table
from .mapping import unit_table
from .omop import Tables, count, fetch, frame, register_table, run

VARIABLE_UNITS = {
    "anc": "anc_1e9_per_l",
    "platelets": "platelets_1e9_per_l",
    "haemoglobin_g_per_l": "haemoglobin_g_per_l",
    "creatinine_umol_per_l": "creatinine_umol_per_l",
    "bilirubin_umol_per_l": "bilirubin_umol_per_l",
    "weight_kg": "weight_kg",
    "height_cm": "height_cm",
    "bsa_m2": "bsa_m2",
    "tumour_size_mm": "tumour_size_mm",
}
DEFAULT_INTERVAL_DAYS = 21
#: Birth date from year, month and day of birth (January / the 1st where missing; NULL if invalid),
#: as in pipelines/sql/chemo/mapped_measurements.sql (a portable TRY_CAST of the ISO date).
BIRTH_SQL = (
    "TRY_CAST(CAST(CAST(year_of_birth AS BIGINT) AS VARCHAR)"
    " || '-' || lpad(CAST(CAST(coalesce(month_of_birth, 1) AS BIGINT) AS VARCHAR), 2, '0')"
    " || '-' || lpad(CAST(CAST(coalesce(day_of_birth, 1) AS BIGINT) AS VARCHAR), 2, '0') AS DATE)"
)


def _quarantine(
    con: Tables,
    sql: str,
    *,
    stage: str,
    rule: str,
    column: str | None,
    reason: str,
    key: str,
) -> pd.DataFrame:
    """Quarantine records for the rows `sql` selects (`key`, `person_id` and `column`).

    The person stays out of `row_key`, in its own column, for the writer to pseudonymise.
    """
    rows = frame(con, sql)
    return make_quarantine(
        rows, stage=stage, rule=rule, column=column, reason=reason, key_columns=[key], id_column="person_id"
    )


def _drugs(con: Tables, on_unknown: str, quarantine: list[pd.DataFrame]) -> list[str]:
    """Table `dx`: each cycle's linked drug exposures with the drug's name; unknown concepts handled."""
    cmap = concept_map()
    known = cmap[cmap["omop_table"] == "drug_exposure"]
    name_of = dict(zip(known["concept_id"], known.index, strict=True))
    register_table(
        con, "_drug_map", pd.DataFrame({"concept_id": list(name_of), "drug": list(name_of.values())})
    )
    field = int(cmap.loc["drug_exposure_event_field", "concept_id"])
    run(
        con,
        "CREATE OR REPLACE TABLE _dx AS SELECT ev.episode_id, ev._row AS ev_row, d.drug_exposure_id, "
        "d.person_id, d.drug_concept_id, d.drug_exposure_start_date, d.quantity, m.drug "
        "FROM episode_event ev "
        "JOIN drug_exposure d ON ev.event_id = d.drug_exposure_id "
        "LEFT JOIN _drug_map m ON d.drug_concept_id = m.concept_id "
        f"WHERE ev.episode_event_field_concept_id = {field}"
    )
    counts: dict[int, int] = dict(
        fetch(con, "SELECT drug_concept_id, count(*) AS n FROM _dx WHERE drug IS NULL GROUP BY 1 "
                   "ORDER BY n DESC, 1")
    )
    if counts and on_unknown == "error":
        raise BadInputError(
            f"Drug concept(s) missing from rules/omop_concepts.csv (exposures per concept): {counts}.",
            f"Known drug concepts: {name_of}; add the drug with its cited concept id, or "
            "--set input.unknown_regimen=quarantine.",
        )
    if counts:
        quarantine.append(
            _quarantine(
                con,
                "SELECT drug_exposure_id, person_id, drug_concept_id FROM _dx WHERE drug IS NULL "
                "ORDER BY ev_row",
                stage="omop_drug_exposure",
                rule="unknown_drug_concept",
                column="drug_concept_id",
                reason="drug concept not in the concept map",
                key="drug_exposure_id",
            )
        )
    run(con,  # their cycles are incomplete: quarantined by the cycle rules, not read as holds
        "CREATE OR REPLACE TABLE _unknown_drug_cycles AS SELECT episode_id, count(*) AS n FROM _dx "
        "WHERE drug IS NULL GROUP BY 1")
    run(con, "CREATE OR REPLACE TABLE dx AS SELECT * FROM _dx WHERE drug IS NOT NULL")
    return [str(r[0]) for r in fetch(con, "SELECT DISTINCT drug FROM dx ORDER BY drug")]


def cycle_episodes(
    con: Tables, on_unknown: str, quarantine: list[pd.DataFrame]
) -> list[str]:
    """Table `cyc`: one row per Treatment Cycle episode in (patient, cycle, start) order, `_key` 0.. .

    Columns: patient and cycle ids, regimen, start date, delivered and planned dose per drug, the
    planned interval. Returns the drugs found.
    """
    cmap = concept_map()
    drugs = _drugs(con, on_unknown, quarantine)
    regimens = regimen_table()
    plan = regimens[["regimen", "drug", "planned_dose_mg_per_m2", "cycle_days"]]
    register_table(con, "_plan", plan.assign(_i=np.arange(1, len(plan) + 1, dtype="int64")))  # file order
    plans = "".join(
        f", max(CASE WHEN drug = {literal(d)} THEN planned_dose_mg_per_m2 END)::DOUBLE "
        f"AS {quote(PLANNED_PREFIX + d)}"
        for d in drugs
    )
    run(con,  # per regimen: planned dose of each drug found, and the first row's cycle length
        f"CREATE OR REPLACE TABLE _plans AS SELECT regimen, arg_min(cycle_days, _i) AS cycle_days{plans} "
        "FROM _plan GROUP BY regimen")
    wide = "".join(
        f", max(CASE WHEN drug = {literal(d)} THEN mg END) AS {quote(DELIVERED_PREFIX + d)}" for d in drugs
    )
    run(con, "CREATE OR REPLACE TABLE _per AS SELECT episode_id, drug, coalesce(sum(quantity), 0.0) AS mg, "
             "min(drug_exposure_start_date) AS start FROM dx GROUP BY episode_id, drug")
    run(con, f"CREATE OR REPLACE TABLE _wide AS SELECT episode_id, min(start) AS start{wide} FROM _per "
             "GROUP BY 1")
    delivered = "".join(f", w.{quote(DELIVERED_PREFIX + d)}" for d in drugs)
    planned = "".join(f", p.{quote(PLANNED_PREFIX + d)}" for d in drugs)
    run(
        con,
        f"""CREATE OR REPLACE TABLE cyc AS
        WITH reg AS (
            SELECT episode_id AS parent_id, episode_source_value AS regimen, _row AS reg_row FROM episode
            WHERE episode_concept_id = {int(cmap.loc["treatment_regimen", "concept_id"])})
        SELECT e.person_id AS patient_id, e.episode_number AS cycle_number,
            coalesce(reg.regimen, 'unknown') AS regimen,
            coalesce(w.start, e.episode_start_date) AS cycle_start_date{delivered}{planned},
            coalesce(p.cycle_days, {DEFAULT_INTERVAL_DAYS})::DOUBLE AS planned_interval_days,
            coalesce(u.n, 0)::BIGINT AS {UNKNOWN_DRUG_EXPOSURES},
            row_number() OVER (ORDER BY e.person_id, e.episode_number NULLS LAST,
                coalesce(w.start, e.episode_start_date) NULLS LAST, e._row, reg.reg_row NULLS LAST) - 1
                AS _key
        FROM episode e LEFT JOIN reg ON e.episode_parent_id = reg.parent_id
        LEFT JOIN _wide w ON e.episode_id = w.episode_id
        LEFT JOIN _plans p ON reg.regimen = p.regimen
        LEFT JOIN _unknown_drug_cycles u ON e.episode_id = u.episode_id
        WHERE e.episode_concept_id = {int(cmap.loc["treatment_cycle", "concept_id"])}"""
    )
    return drugs


def mapped_measurements(
    con: Tables, quarantine: list[pd.DataFrame], extra: dict[str, int]
) -> None:
    """Table `meas`: measurements found by the concept map, inside life, units converted (see module doc)."""
    cmap = concept_map()
    meas = cmap[(cmap["omop_table"] == "measurement") & (cmap.index != "anc_nadir")]  # nadir: same code
    by_id = {int(k): v for k, v in zip(meas["concept_id"], meas.index, strict=True) if k}
    by_source = dict(zip(meas["source_value"], meas.index, strict=False))
    by_id_frame = pd.DataFrame({"concept_id": list(by_id), "variable": list(by_id.values())})
    register_table(con, "rule_measurement_concepts", by_id_frame)
    by_source_frame = pd.DataFrame({"source": list(by_source), "variable": list(by_source.values())})
    register_table(con, "rule_measurement_sources", by_source_frame)
    units = unit_table().rename(columns={"variable": "canon"}).drop_duplicates(["canon", "unit"])
    canon = pd.DataFrame({"variable": list(VARIABLE_UNITS), "canon": list(VARIABLE_UNITS.values())})
    register_table(con, "rule_canonical_units", canon)
    register_table(con, "rule_unit_factors", units[["canon", "unit", "multiply"]].astype({"multiply": float}))
    run_sql_file(con, "mapped_measurements", folder="chemo")
    extra["measurement_rows_not_in_concept_map"] = count(
        con, "SELECT count(*) FROM mapped_measurements WHERE variable IS NULL"
    )
    steps = (
        (
            "dup",
            "duplicate_measurement",
            None,
            "same person, date, concept, value and unit as an earlier row (kept once)",
        ),
        ("outside", "measurement_outside_life", "measurement_date", "measured before birth or after death"),
        ("factor IS NULL", "unknown_unit", "unit_source_value", "unit not in rules/chemo_units.csv"),
    )
    kept = "variable IS NOT NULL"
    for where, rule, column, reason in steps:  # in order: a row is quarantined under its first rule
        cols = "measurement_id, person_id" + (f", {column}" if column else "")
        quarantine.append(
            _quarantine(
                con,
                f"SELECT {cols} FROM mapped_measurements WHERE {kept} AND {where} ORDER BY _row",
                stage="omop_measurement",
                rule=rule,
                column=column,
                reason=reason,
                key="measurement_id",
            )
        )
        kept += f" AND NOT ({where})"
    run(
        con,
        "CREATE OR REPLACE VIEW meas AS SELECT person_id AS patient_id, measurement_date, variable, "
        f"value_as_number * factor AS value, _row FROM mapped_measurements WHERE {kept}"
    )
