"""What the chemotherapy ETL's grouped pandas UDFs run on Spark, per group of whole patients.

Pure functions on frames (`spark_stages.py` hands them to `apply_by_key_outputs`): the first pass
(`first_part` for OMOP cycle rows, `registry_part` for a registry export, both ending in
`checked_part`: registry schema, cycle rules, unit conversion, canonical cycles, labs held) and the
second (`second_part`: labs filled, trajectories assembled and validated). Each calls the functions
the DuckDB batches call and returns its outputs by name, the group's counts as one JSON row.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from dosewise.data_schemas import validate_frame
from dosewise.data_schemas.quarantine import QUARANTINE_COLUMNS

from .canonical import canonical_cycles, canonical_patients, fill_labs, hold_labs
from .cycles import apply_cycle_rules
from .omop_cycles import check_rows, registry_shaped
from .registry import load_mapping, registry_rows
from .rewards import first_actions
from .run_outputs import per_episode
from .sources import covered_by
from .spark_registry import PATIENT_KEY, SparkRegistry, restore_dtypes
from .trajectories import add_actions, assemble
from .units import convert_units

KEY = "patient_id"
ROW = "_file_row"  # a registry row's position in the export (the groups keep file order)
Q_TYPES = {**dict.fromkeys(QUARANTINE_COLUMNS, "string"), "patient_id": "string", "_stage": "string"}


def tag_quarantine(q: pd.DataFrame, stage: str) -> pd.DataFrame:
    """Quarantine records as text (ids and failure cases as the writer writes them), with their stage."""
    out = q.assign(_stage=stage).reindex(columns=list(Q_TYPES))
    return pd.DataFrame({col: [None if pd.isna(v) else str(v) for v in out[col]] for col in out.columns},
                        dtype=object)


def first_part(
    config: Any, rows_part: pd.DataFrame, behaviour: pd.DataFrame | None
) -> dict[str, pd.DataFrame]:
    """The OMOP cycle rows (`_rows`) of one group of whole patients, checked against the registry
    schema as `omop_cycles.check_rows` checks a batch, then `checked_part`."""
    rows = registry_shaped(rows_part.sort_values("_key", kind="stable").drop(columns=["_key", "_bucket"])
                           .reset_index(drop=True))
    return checked_part(config, *check_rows(rows), behaviour)


def registry_part(
    config: Any, registry: SparkRegistry, raw_part: pd.DataFrame, behaviour: pd.DataFrame | None
) -> dict[str, pd.DataFrame]:
    """The export rows of one group of whole patients (in file order), made into the frame pandas
    reads (`restore_dtypes`), reshaped, mapped and checked (`registry_rows`), then `checked_part`."""
    raw = raw_part.sort_values(ROW, kind="stable").drop(columns=[PATIENT_KEY, ROW]).reset_index(drop=True)
    raw = restore_dtypes(raw, registry.dtypes, registry.path.suffix != ".parquet")
    rows, q = registry_rows(raw, load_mapping(config.input.mapping), registry.path)
    if behaviour is not None:
        behaviour = behaviour.drop(columns=[PATIENT_KEY])
    return checked_part(config, rows, q, behaviour)


def checked_part(config: Any, rows: pd.DataFrame, q_sources: pd.DataFrame,
                 behaviour: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """Cycles, units and held labs of one group of whole patients' checked rows, as
    `stage_runs.first_pass` does per batch: held cycles, patients, quarantine, first actions and the
    group's counts (one JSON row)."""
    counts: dict[str, Any] = {"notes": {}, "missing": {}}
    out: dict[str, pd.DataFrame] = {}
    quarantine = [tag_quarantine(q_sources, "sources")]
    counts["sources_out"] = len(rows)
    if behaviour is not None:
        counts["covered"] = covered_by(behaviour.astype({KEY: str}), rows)
    if not rows.empty:
        result = apply_cycle_rules(rows, "quarantine", config.actions.max_rdi)
        quarantine.append(tag_quarantine(result.quarantined(), "cycles"))
        counts.update(cycles_in=len(rows), cycles_out=len(result.cycles), notes=result.notes)
        if not result.cycles.empty:
            converted, q_units, n_values = convert_units(result.cycles)
            quarantine.append(tag_quarantine(q_units, "units"))
            cycles = canonical_cycles(converted)
            out["patients"] = canonical_patients(converted, cycles)
            out["held"], counts["missing"] = hold_labs(cycles)
            if config.reward.censoring == "ipcw_km":
                first = first_actions(add_actions(cycles, config.actions.rdi_edges))
                out["first"] = pd.DataFrame({KEY: first.index.astype(str), "action": first.to_numpy()})
            first_cycle = [str(cycles[KEY].iloc[0]), float(cycles["planned_interval_days"].iloc[0])]
            counts.update(units_in=n_values, units_out=n_values - len(q_units), states_in=len(converted),
                          first_cycle=first_cycle)
    out["q"] = pd.concat(quarantine, ignore_index=True)
    out["counts"] = pd.DataFrame({"json": [json.dumps(counts)]})
    return out


def second_part(run_values: dict[str, Any], held: pd.DataFrame,
                behaviour: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """Labs filled, the trajectories assembled and validated, one row per episode (for the cohort),
    for one group of whole patients, as `stage_runs.second_pass` does per batch."""
    v = run_values
    held = held.sort_values([KEY, "cycle_number"], kind="stable").reset_index(drop=True)
    cycles = fill_labs(held, v["missing"], v["medians"])
    patients = v["patients"]
    patients = patients[patients[KEY].isin(set(cycles[KEY]))].reset_index(drop=True)
    if behaviour is not None:
        behaviour = behaviour.astype({KEY: str})
    traj = assemble(cycles, patients, v["config"], v["episode_ids"], behaviour, v["sd"], v["interval"],
                    v["censoring"])
    traj = validate_frame(traj, v["schema"], "chemo trajectories")
    per = per_episode(traj).reset_index()
    return {"traj": traj, "per": per, "counts": pd.DataFrame({"cycles": [len(cycles)], "traj": [len(traj)]})}




__all__ = ["KEY", "Q_TYPES", "ROW", "checked_part", "first_part", "registry_part", "second_part",
           "tag_quarantine"]
