"""OMOP CDM v5.4 + oncology extension -> registry-shaped cycle rows (then the shared cycle rules).

Cycles are Treatment Cycle episodes whose parent is a Treatment Regimen episode (its
`episode_source_value` names the regimen, rules/chemo_regimens.csv gives the planned dose per
m2 and interval); episode_event rows with field drug_exposure.drug_exposure_id link each cycle to
its drug exposures (delivered mg = quantity). Measurements are found by the cited concept map
(rules/omop_concepts.csv: concept id where checked, else the LOINC or local source value) and
placed on cycles: counts and chemistry within 3 days before a cycle's scheduled start, the nadir
draw after the dose and before the next scheduled start; units by rules/chemo_units.csv.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dosewise.data_schemas import BadInputError, MissingSourceTable, make_quarantine
from dosewise.data_schemas.raw_omop import OMOP_SCHEMAS, OPTIONAL_TABLES, REQUIRED_TABLES, TABLE_PURPOSE
from dosewise.data_schemas.raw_registry import DELIVERED_PREFIX, PLANNED_PREFIX
from dosewise.data_schemas.validation import split_valid

from ..simulators.oncology_omop import concept_map
from .cycles import regimen_table
from .mapping import read_table, unit_table

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
AT_START = (
    "anc",
    "platelets",
    "haemoglobin_g_per_l",
    "creatinine_umol_per_l",
    "bilirubin_umol_per_l",
    "weight_kg",
    "bsa_m2",
    "tumour_size_mm",
)
WINDOW_DAYS = 3


def _find(source: Path, name: str) -> Path | None:
    for ext in (".parquet", ".csv.gz", ".csv"):
        if (source / f"{name}{ext}").is_file():
            return source / f"{name}{ext}"
    return None


def read_tables(source: Path) -> tuple[dict[str, pd.DataFrame], list[pd.DataFrame], list[Path], int]:
    """Every needed table, validated at the boundary (rows that fail go to quarantine)."""
    tables: dict[str, pd.DataFrame] = {}
    quarantine: list[pd.DataFrame] = []
    files: list[Path] = []
    n_in = 0
    for name in (*REQUIRED_TABLES, *OPTIONAL_TABLES):
        path = _find(source, name)
        schema = OMOP_SCHEMAS[name]
        if path is None:
            if name in REQUIRED_TABLES:
                raise MissingSourceTable(
                    f"{source} has no OMOP `{name}` table ({name}.csv, .csv.gz or .parquet), needed for "
                    f"{TABLE_PURPOSE[name]}.",
                    "Export it with OMOP's lower-case file name beside person.",
                )
            tables[name] = pd.DataFrame({col: pd.Series(dtype=object) for col in schema.columns})
            continue
        raw = read_table(path)
        missing = [col for col, spec in schema.columns.items() if spec.required and col not in raw.columns]
        if missing:
            raise MissingSourceTable(
                f"{path} lacks column(s) {', '.join(missing)} of OMOP table `{name}`.",
                f"Use the CDM v5.4 column names; the file has: {', '.join(raw.columns[:20])}.",
            )
        key = str(next(iter(schema.columns)))
        person = "person_id" if "person_id" in schema.columns else None  # kept out of row_key
        split = split_valid(
            raw[[c for c in schema.columns if c in raw.columns]],
            schema,
            stage=f"omop_{name}",
            key_columns=[] if key == person else [key],
            id_column=person,
        )
        tables[name], files = schema.validate(split.kept), [*files, path]  # kept rows, coerced
        quarantine.append(split.quarantined)
        n_in += len(raw)
    return tables, quarantine, files, n_in


def cycle_episodes(
    t: dict[str, pd.DataFrame], on_unknown: str, quarantine: list[pd.DataFrame]
) -> pd.DataFrame:
    """One row per Treatment Cycle episode: regimen, cycle number, start date, delivered and planned doses."""
    cmap = concept_map()
    ep = t["episode"]
    regimen = ep[ep["episode_concept_id"] == cmap.loc["treatment_regimen", "concept_id"]]
    cycles = ep[ep["episode_concept_id"] == cmap.loc["treatment_cycle", "concept_id"]].merge(
        regimen[["episode_id", "episode_source_value"]].rename(
            columns={"episode_id": "episode_parent_id", "episode_source_value": "regimen"}
        ),
        on="episode_parent_id",
        how="left",
    )
    ev = t["episode_event"]
    ev = ev[ev["episode_event_field_concept_id"] == cmap.loc["drug_exposure_event_field", "concept_id"]]
    drugs = ev.merge(t["drug_exposure"], left_on="event_id", right_on="drug_exposure_id", how="inner")
    known = cmap[cmap["omop_table"] == "drug_exposure"]
    name_of = dict(zip(known["concept_id"], known.index, strict=True))
    drugs["drug"] = drugs["drug_concept_id"].map(name_of)
    unknown = drugs[drugs["drug"].isna()]
    if len(unknown):
        counts = unknown["drug_concept_id"].value_counts().to_dict()
        if on_unknown == "error":
            raise BadInputError(
                f"Drug concept(s) missing from rules/omop_concepts.csv (exposures per concept): {counts}.",
                f"Known drug concepts: {name_of}; add the drug with its cited concept id, or "
                "--set input.unknown_regimen=quarantine.",
            )
        quarantine.append(
            make_quarantine(
                unknown,
                stage="omop_drug_exposure",
                rule="unknown_drug_concept",
                column="drug_concept_id",
                reason="drug concept not in the concept map",
                key_columns=["drug_exposure_id"],
                id_column="person_id",
            )
        )
        drugs = drugs[drugs["drug"].notna()]
    per = drugs.groupby(["episode_id", "drug"]).agg(
        mg=("quantity", "sum"), start=("drug_exposure_start_date", "min")
    )
    wide = per["mg"].unstack("drug")
    wide.columns = [DELIVERED_PREFIX + str(d) for d in wide.columns]
    start = per["start"].groupby(level=0).min()
    cycles = cycles.merge(wide, left_on="episode_id", right_index=True, how="left")
    cycles["cycle_start_date"] = start.reindex(cycles["episode_id"]).to_numpy()
    cycles["cycle_start_date"] = cycles["cycle_start_date"].fillna(cycles["episode_start_date"])
    plans = regimen_table()
    for drug in [c.removeprefix(DELIVERED_PREFIX) for c in wide.columns]:
        plan = plans[plans["drug"] == drug].set_index("regimen")["planned_dose_mg_per_m2"]
        cycles[PLANNED_PREFIX + drug] = cycles["regimen"].map(plan).astype(float)
    interval = plans.drop_duplicates("regimen").set_index("regimen")["cycle_days"]
    cycles["planned_interval_days"] = cycles["regimen"].map(interval).fillna(21).astype(float)
    cycles = cycles.rename(columns={"person_id": "patient_id", "episode_number": "cycle_number"})
    cycles["regimen"] = cycles["regimen"].fillna("unknown")
    return cycles.sort_values(["patient_id", "cycle_number", "cycle_start_date"], kind="stable").reset_index(
        drop=True
    )


def mapped_measurements(
    t: dict[str, pd.DataFrame], quarantine: list[pd.DataFrame], extra: dict[str, int]
) -> pd.DataFrame:
    """Measurements found by the concept map, inside life, units converted (the rest quarantined)."""
    cmap = concept_map()
    meas = cmap[(cmap["omop_table"] == "measurement") & (cmap.index != "anc_nadir")]  # nadir: same code
    by_id = {int(k): v for k, v in zip(meas["concept_id"], meas.index, strict=True) if k}
    by_source = dict(zip(meas["source_value"], meas.index, strict=False))
    m = t["measurement"].copy()
    var = m["measurement_concept_id"].map(by_id)
    m["variable"] = var.fillna(m["measurement_source_value"].map(by_source))
    extra["measurement_rows_not_in_concept_map"] = int(m["variable"].isna().sum())
    m = m[m["variable"].notna()]
    dup = m.duplicated(["person_id", "measurement_date", "variable", "value_as_number", "unit_source_value"])
    quarantine.append(
        make_quarantine(
            m[dup],
            stage="omop_measurement",
            rule="duplicate_measurement",
            column=None,
            reason="same person, date, concept, value and unit as an earlier row (kept once)",
            key_columns=["measurement_id"],
            id_column="person_id",
        )
    )
    m = m[~dup]
    people = t["person"].set_index("person_id")
    birth = pd.to_datetime(
        dict(
            year=people["year_of_birth"],
            month=people["month_of_birth"].fillna(1),
            day=people["day_of_birth"].fillna(1),
        )
    )
    death = t["death"].groupby("person_id")["death_date"].min()
    b = birth.reindex(m["person_id"]).to_numpy()
    d = pd.to_datetime(death.reindex(m["person_id"]).to_numpy())
    outside = (m["measurement_date"].to_numpy() < b) | (pd.notna(d) & (m["measurement_date"].to_numpy() > d))
    quarantine.append(
        make_quarantine(
            m[outside],
            stage="omop_measurement",
            rule="measurement_outside_life",
            column="measurement_date",
            reason="measured before birth or after death",
            key_columns=["measurement_id"],
            id_column="person_id",
        )
    )
    m = m[~outside]
    units = unit_table()
    lookup = pd.DataFrame(
        {
            "canon": m["variable"].map(VARIABLE_UNITS).to_numpy(),
            "unit": m["unit_source_value"].fillna("").to_numpy(),
        }
    )
    table = units.rename(columns={"variable": "canon"})[["canon", "unit", "multiply"]]
    merged = lookup.merge(table.drop_duplicates(["canon", "unit"]), on=["canon", "unit"], how="left")
    f = pd.Series(merged["multiply"].astype(float).to_numpy(), index=m.index)
    f[m["variable"] == "ecog"] = 1.0
    bad = f.isna()
    quarantine.append(
        make_quarantine(
            m[bad],
            stage="omop_measurement",
            rule="unknown_unit",
            column="unit_source_value",
            reason="unit not in rules/chemo_units.csv",
            key_columns=["measurement_id"],
            id_column="person_id",
        )
    )
    m = m[~bad].assign(value=m["value_as_number"] * f[~bad])
    return m[["person_id", "measurement_date", "variable", "value"]].sort_values(
        "measurement_date", kind="stable"
    )
