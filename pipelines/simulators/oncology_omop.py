"""Dated records -> OMOP CDM v5.4 tables with the oncology extension (episode, episode_event).

The same records (and the same planted dirt) as the registry writer: a regimen episode per
patient (Treatment Regimen) with one child Treatment Cycle episode per cycle (episode_number =
cycle number), each linked through episode_event to its drug_exposure. Counts and chemistry are
`measurement` rows at the cycle's scheduled start (the day the dose decision was made), the nadir
draw on day 8 after the dose; CTCAE grades, progression and last follow-up are `observation`
rows under local source values; `death` holds deaths. Concept ids come from the cited map
`rules/omop_concepts.csv`; a measurement without a checked concept id carries 0 and its LOINC
code in `measurement_source_value`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..rule_tables import read_rule_csv
from .oncology_records import Records

GRADES = (
    "neutropenia",
    "febrile_neutropenia",
    "thrombocytopenia",
    "neuropathy",
    "diarrhoea",
    "mucositis",
    "fatigue",
)
MEASURED = (
    ("anc", "anc_1e9_per_l", "anc_unit"),
    ("platelets", "platelets_1e9_per_l", "platelets_unit"),
    ("haemoglobin_g_per_l", "haemoglobin_g_per_l", "g/L"),
    ("creatinine_umol_per_l", "creatinine_umol_per_l", "umol/L"),
    ("bilirubin_umol_per_l", "bilirubin_umol_per_l", "umol/L"),
    ("weight_kg", "weight_kg", "kg"),
    ("bsa_m2", "bsa_recorded_m2", "m2"),
    ("tumour_size_mm", "tumour_size_mm", "mm"),
)


def concept_map() -> pd.DataFrame:
    """rules/omop_concepts.csv indexed by variable (concept_id 0 where none was checked)."""
    table = read_rule_csv("omop_concepts.csv")
    table["concept_id"] = pd.to_numeric(table["concept_id"], errors="coerce").fillna(0).astype("int64")
    return table.set_index("variable")


def _measurements(cyc: pd.DataFrame, pts: pd.DataFrame, cmap: pd.DataFrame) -> pd.DataFrame:
    scheduled = cyc["cycle_start_date"] - pd.to_timedelta(cyc["delay_days"], unit="D")
    parts = []
    for variable, column, unit in MEASURED:
        unit_values = cyc[unit] if unit in cyc else pd.Series(unit, index=cyc.index)
        parts.append(
            pd.DataFrame(
                {
                    "person_id": cyc["patient_id"],
                    "measurement_date": scheduled,
                    "variable": variable,
                    "value_as_number": cyc[column],
                    "unit_source_value": unit_values.replace({"10^9/L": "10*9/L", "cells/uL": "/uL"}),
                }
            )
        )
    nadir_date = cyc["cycle_start_date"] + pd.Timedelta(days=8)
    parts.append(
        pd.DataFrame(
            {
                "person_id": cyc["patient_id"],
                "measurement_date": nadir_date,
                "variable": "anc",
                "value_as_number": cyc["anc_nadir_1e9_per_l"],
                "unit_source_value": cyc["anc_unit"].replace({"10^9/L": "10*9/L", "cells/uL": "/uL"}),
            }
        )
    )
    first = pts.set_index("patient_id")
    parts.append(
        pd.DataFrame(
            {
                "person_id": first.index,
                "measurement_date": first["first_cycle_date"],
                "variable": "height_cm",
                "value_as_number": first["height_cm"].to_numpy(),
                "unit_source_value": "cm",
            }
        )
    )
    parts.append(
        pd.DataFrame(
            {
                "person_id": first.index,
                "measurement_date": first["first_cycle_date"],
                "variable": "ecog",
                "value_as_number": first["ecog"].astype(float).to_numpy(),
                "unit_source_value": "",
            }
        )
    )
    m = pd.concat(parts, ignore_index=True)
    m = m[m["value_as_number"].notna()].reset_index(drop=True)
    m.insert(0, "measurement_id", np.arange(1, len(m) + 1, dtype=np.int64))
    m["measurement_concept_id"] = cmap.loc[m["variable"], "concept_id"].to_numpy()
    m["measurement_source_value"] = cmap.loc[m["variable"], "source_value"].to_numpy()
    m["measurement_type_concept_id"] = 0
    m["unit_concept_id"] = 0
    return m.drop(columns=["variable"])


def _observations(cyc: pd.DataFrame, pts: pd.DataFrame, cmap: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for cat in GRADES:
        rows = cyc[cyc[f"grade_{cat}"] > 0]
        parts.append(
            pd.DataFrame(
                {
                    "person_id": rows["patient_id"],
                    "observation_date": rows["cycle_start_date"],
                    "observation_source_value": cmap.loc[f"grade_{cat}", "source_value"],
                    "value_as_number": rows[f"grade_{cat}"].astype(float),
                }
            )
        )
    for key, col in (("progression", "progression_date"), ("last_followup", "last_followup_date")):
        rows = pts[pts[col].notna()]
        parts.append(
            pd.DataFrame(
                {
                    "person_id": rows["patient_id"],
                    "observation_date": rows[col],
                    "observation_source_value": cmap.loc[key, "source_value"],
                    "value_as_number": np.nan,
                }
            )
        )
    obs = pd.concat(parts, ignore_index=True)
    obs.insert(0, "observation_id", np.arange(1, len(obs) + 1, dtype=np.int64))
    obs["observation_concept_id"] = 0
    obs["observation_type_concept_id"] = 0
    return obs


def omop_tables(records: Records) -> dict[str, pd.DataFrame]:
    """The OMOP tables: person, drug_exposure, measurement, observation, condition_occurrence,
    death, episode and episode_event."""
    cmap = concept_map()
    cyc = records.cycles.sort_values(["patient_id", "cycle_number"], kind="stable").reset_index(drop=True)
    cyc = cyc.drop_duplicates(["patient_id", "cycle_number"]).reset_index(drop=True)
    late = records.cycles.duplicated(["patient_id", "cycle_number"], keep=False)
    pts = records.patients
    birth = pd.to_datetime(pts["birth_date"])
    person = pd.DataFrame(
        {
            "person_id": pts["patient_id"],
            "gender_concept_id": np.where(pts["sex_male"] == 1, 8507, 8532),
            "year_of_birth": birth.dt.year,
            "month_of_birth": birth.dt.month,
            "day_of_birth": birth.dt.day,
            "birth_datetime": birth,
            "race_concept_id": 0,
            "ethnicity_concept_id": 0,
            "gender_source_value": np.where(pts["sex_male"] == 1, "M", "F"),
        }
    )
    n = len(cyc)
    drug = pd.DataFrame(
        {
            "drug_exposure_id": np.arange(1, n + 1, dtype=np.int64),
            "person_id": cyc["patient_id"],
            "drug_concept_id": int(cmap.loc["docetaxel", "concept_id"]),
            "drug_exposure_start_date": cyc["cycle_start_date"],
            "drug_exposure_end_date": cyc["cycle_start_date"],
            "drug_type_concept_id": 0,
            "quantity": cyc["delivered_dose_mg"],
            "dose_unit_source_value": "mg",
            "drug_source_value": "docetaxel",
            "route_source_value": "intravenous",
        }
    )
    regimens = pts[["patient_id", "first_cycle_date"]].reset_index(drop=True)
    reg_ids = np.arange(1, len(regimens) + 1, dtype=np.int64)
    regimen_of = dict(zip(regimens["patient_id"], reg_ids, strict=True))
    episode = pd.concat(
        [
            pd.DataFrame(
                {
                    "episode_id": reg_ids,
                    "person_id": regimens["patient_id"],
                    "episode_concept_id": int(cmap.loc["treatment_regimen", "concept_id"]),
                    "episode_start_date": regimens["first_cycle_date"],
                    "episode_parent_id": pd.NA,
                    "episode_number": pd.NA,
                    "episode_object_concept_id": 0,
                    "episode_type_concept_id": 0,
                    "episode_source_value": cyc["regimen"].iloc[0] if n else "",
                }
            ),
            pd.DataFrame(
                {
                    "episode_id": len(regimens) + np.arange(1, n + 1, dtype=np.int64),
                    "person_id": cyc["patient_id"],
                    "episode_concept_id": int(cmap.loc["treatment_cycle", "concept_id"]),
                    "episode_start_date": cyc["cycle_start_date"],
                    "episode_parent_id": cyc["patient_id"].map(regimen_of).to_numpy(),
                    "episode_number": cyc["cycle_number"],
                    "episode_object_concept_id": 0,
                    "episode_type_concept_id": 0,
                    "episode_source_value": "",
                }
            ),
        ],
        ignore_index=True,
    )
    event = pd.DataFrame(
        {
            "episode_id": len(regimens) + np.arange(1, n + 1, dtype=np.int64),
            "event_id": drug["drug_exposure_id"],
            "episode_event_field_concept_id": int(cmap.loc["drug_exposure_event_field", "concept_id"]),
        }
    )
    meas = _measurements(cyc, pts, cmap)
    dup = records.cycles[late].drop_duplicates(["patient_id", "cycle_number"])
    if len(dup):  # the registry's duplicated rows: duplicated measurement rows here
        extra = meas[meas["person_id"].isin(dup["patient_id"])].head(len(dup)).copy()
        extra["measurement_id"] = meas["measurement_id"].max() + np.arange(1, len(extra) + 1)
        meas = pd.concat([meas, extra], ignore_index=True)
    death = pts.loc[pts["death_date"].notna(), ["patient_id", "death_date"]].rename(
        columns={"patient_id": "person_id"}
    )
    condition = pd.DataFrame(
        {
            "condition_occurrence_id": reg_ids,
            "person_id": regimens["patient_id"],
            "condition_concept_id": 0,
            "condition_start_date": regimens["first_cycle_date"],
            "condition_type_concept_id": 0,
            "condition_source_value": "C34 (ICD-10, lung)",
        }
    )
    dates = {
        "episode": ["episode_start_date"],
        "drug_exposure": ["drug_exposure_start_date", "drug_exposure_end_date"],
        "measurement": ["measurement_date"],
        "death": ["death_date"],
        "condition_occurrence": ["condition_start_date"],
    }
    tables = {
        "person": person,
        "drug_exposure": drug,
        "measurement": meas,
        "observation": _observations(cyc, pts, cmap),
        "condition_occurrence": condition,
        "death": death,
        "episode": episode,
        "episode_event": event,
    }
    tables["observation"]["observation_date"] = pd.to_datetime(
        tables["observation"]["observation_date"]
    ).dt.date
    for name, cols in dates.items():
        for col in cols:
            tables[name][col] = pd.to_datetime(tables[name][col]).dt.date
    tables["person"]["birth_datetime"] = pd.to_datetime(tables["person"]["birth_datetime"]).dt.date
    return tables
