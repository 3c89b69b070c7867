"""Place OMOP measurements and observations on cycles, and assemble the registry-shaped rows.

Counts and chemistry: the latest value within `WINDOW_DAYS` before (or on) the cycle's scheduled
start (previous start + planned interval; the first cycle's own date). Nadir: the lowest ANC after
the cycle's dose and at least `WINDOW_DAYS` before the next scheduled start. Height: the latest
before the cycle. ECOG: the first recorded. Grades: the highest CTCAE grade recorded from the
cycle's start to the next cycle (no observation = grade 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dosewise.data_schemas import empty_quarantine
from dosewise.data_schemas.raw_registry import RegistrySchema
from dosewise.data_schemas.validation import split_valid

from ..simulators.oncology_omop import concept_map
from .config import TOXICITY_CATEGORIES, ChemoPipelineConfig
from .omop import AT_START, WINDOW_DAYS, cycle_episodes, mapped_measurements, read_tables


def _asof(left: pd.DataFrame, right: pd.DataFrame, left_on: str, right_on: str, **kw: object) -> pd.DataFrame:
    return pd.merge_asof(
        left.sort_values(left_on, kind="stable"),
        right.sort_values(right_on, kind="stable"),
        left_on=left_on,
        right_on=right_on,
        by="patient_id",
        **kw,
    )


def place_measurements(cycles: pd.DataFrame, meas: pd.DataFrame) -> pd.DataFrame:
    """Add the at-start values, the nadir, height and ECOG to each cycle (see module doc)."""
    out = cycles.copy()
    prev = out.groupby("patient_id", sort=False)["cycle_start_date"].shift(1)
    interval = pd.to_timedelta(out["planned_interval_days"], unit="D")
    out["scheduled"] = (prev + interval).where(prev.notna(), out["cycle_start_date"])
    out["key"] = np.arange(len(out))
    meas = meas.rename(columns={"person_id": "patient_id"})
    base = out[["key", "patient_id", "scheduled", "cycle_start_date", "planned_interval_days"]]
    tol = pd.Timedelta(days=WINDOW_DAYS)
    for var in (*AT_START, "height_cm"):
        mv = meas.loc[meas["variable"] == var, ["patient_id", "measurement_date", "value"]]
        kw = {"tolerance": tol} if var != "height_cm" else {}
        got = _asof(
            base[["key", "patient_id", "scheduled"]],
            mv,
            "scheduled",
            "measurement_date",
            direction="backward",
            **kw,
        )
        out[var] = got.set_index("key")["value"].reindex(out["key"]).to_numpy()
    anc = meas.loc[meas["variable"] == "anc", ["patient_id", "measurement_date", "value"]]
    got = _asof(
        anc, base, "measurement_date", "cycle_start_date", direction="backward", allow_exact_matches=False
    )
    limit = got["cycle_start_date"] + pd.to_timedelta(got["planned_interval_days"] - WINDOW_DAYS, unit="D")
    got = got[got["key"].notna() & (got["measurement_date"] <= limit)]
    out["anc_nadir"] = got.groupby("key")["value"].min().reindex(out["key"]).to_numpy()
    ecog = (
        meas[meas["variable"] == "ecog"]
        .sort_values("measurement_date")
        .groupby("patient_id")["value"]
        .first()
    )
    out["ecog"] = ecog.reindex(out["patient_id"]).to_numpy()
    return out.drop(columns=["scheduled", "key"])


def place_observations(cycles: pd.DataFrame, obs: pd.DataFrame) -> pd.DataFrame:
    """CTCAE grades per cycle, and the progression and last follow-up dates per patient."""
    cmap = concept_map()
    out = cycles.copy()
    out["key"] = np.arange(len(out))
    obs = obs.rename(columns={"person_id": "patient_id"})
    source = obs["observation_source_value"].astype(str)
    for cat in TOXICITY_CATEGORIES:
        rows = obs.loc[
            source == cmap.loc[f"grade_{cat}", "source_value"],
            ["patient_id", "observation_date", "value_as_number"],
        ]
        got = _asof(
            rows,
            out[["key", "patient_id", "cycle_start_date"]],
            "observation_date",
            "cycle_start_date",
            direction="backward",
        )
        best = got[got["key"].notna()].groupby("key")["value_as_number"].max()
        out[f"grade_{cat}"] = best.reindex(out["key"]).fillna(0.0).to_numpy()
    for key, col, how in (
        ("progression", "progression_date", "min"),
        ("last_followup", "last_followup_date", "max"),
    ):
        dates = (
            obs.loc[source == cmap.loc[key, "source_value"]]
            .groupby("patient_id")["observation_date"]
            .agg(how)
        )
        out[col] = dates.reindex(out["patient_id"]).to_numpy()
    return out.drop(columns=["key"])


def read_omop(
    source: Path, config: ChemoPipelineConfig
) -> tuple[pd.DataFrame, pd.DataFrame, list[Path], int, dict[str, int]]:
    """Registry-shaped rows from an OMOP folder, the boundary quarantine, files, rows read, notes."""
    tables, quarantine, files, n_in = read_tables(source)
    extra: dict[str, int] = {}
    cycles = cycle_episodes(tables, config.input.unknown_regimen, quarantine)
    cycles = place_measurements(cycles, mapped_measurements(tables, quarantine, extra))
    cycles = place_observations(cycles, tables["observation"])
    person = tables["person"].set_index("person_id")
    birth = pd.to_datetime(
        dict(
            year=person["year_of_birth"],
            month=person["month_of_birth"].fillna(1),
            day=person["day_of_birth"].fillna(1),
        )
    )
    sex = person["gender_concept_id"].map(
        {
            int(concept_map().loc["male", "concept_id"]): "M",
            int(concept_map().loc["female", "concept_id"]): "F",
        }
    )
    if "gender_source_value" in person:
        sex = sex.fillna(person["gender_source_value"])
    cycles["birth_date"] = birth.reindex(cycles["patient_id"]).to_numpy()
    cycles["sex"] = sex.reindex(cycles["patient_id"]).to_numpy()
    cycles["death_date"] = (
        tables["death"].groupby("person_id")["death_date"].min().reindex(cycles["patient_id"]).to_numpy()
    )
    cycles["anc_unit"] = "10^9/L"
    cycles["platelets_unit"] = "10^9/L"
    cycles["patient_id"] = cycles["patient_id"].astype(str)
    cycles["cycle_number"] = cycles["cycle_number"].astype("Int64")
    drop = [
        "episode_id",
        "episode_concept_id",
        "episode_start_date",
        "episode_parent_id",
        "episode_source_value",
        "planned_interval_days",
    ]
    rows = cycles.drop(columns=[c for c in drop if c in cycles]).reset_index(drop=True)
    split = split_valid(
        rows, RegistrySchema, stage="omop_cycles", key_columns=["cycle_number"], id_column="patient_id"
    )
    parts = [
        q.rename(columns={"person_id": "patient_id"}) for q in [*quarantine, split.quarantined] if not q.empty
    ]
    q = pd.concat(parts, ignore_index=True) if parts else empty_quarantine()
    kept = RegistrySchema.validate(split.kept)  # coerced (split_valid keeps failing tables' rows as read)
    return kept.reset_index(drop=True), q, files, n_in, extra
