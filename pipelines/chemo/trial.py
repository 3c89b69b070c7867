"""Trial registry records (mapping `design = "trial"`): read, check the arm, validate, outcomes.

The export goes through the same mapping as a cycle registry (row filter, pivot, renames, value
maps, constants), then the trial checks: the `arm` column must exist and hold only the mapping's
`trial.arms` (else exit 2 naming the column or the values and listing the known arms); rows go
through `TrialRegistrySchema` (row failures quarantined); a patient id seen twice is quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dosewise.data_schemas import BadInputError, ConfigError, empty_quarantine, make_quarantine
from dosewise.data_schemas.raw_trial import TRIAL_REQUIRED, trial_schema
from dosewise.data_schemas.validation import split_valid

from .config import ChemoPipelineConfig, ChemoRewardConfig
from .mapping import RegistryMapping, apply_mapping, find_table, read_table
from .reshape import reshape_export
from .trial_mapping import TrialSpec


@dataclass
class TrialRecords:
    """One validated row per patient, the quarantine of each reading step, and the counts."""

    patients: pd.DataFrame
    reshape_quarantine: pd.DataFrame
    record_quarantine: pd.DataFrame
    path: Path
    n_source_rows: int
    n_records: int


def _source_of(mapping: RegistryMapping, column: str) -> str:
    sources = [src for src, dst in mapping.renames.items() if dst == column]
    return f"`{sources[0]}` renamed to `{column}`" if sources else f"`{column}`"


def trial_spec(mapping: RegistryMapping) -> TrialSpec:
    """The mapping's [trial] table; a config error for a cycle-registry mapping."""
    if mapping.trial is None:
        raise ConfigError(
            f"The registry mapping for `{mapping.file}` has design `{mapping.design}` and no [trial] table.",
            'Set design = "trial" and add [trial] arms (see pipelines/configs/registry_colon.toml).',
        )
    return mapping.trial


def check_arms(frame: pd.DataFrame, mapping: RegistryMapping, path: Path) -> None:
    """Exit 2 when the arm column is missing or holds a value outside `trial.arms`."""
    spec = trial_spec(mapping)
    known = ", ".join(spec.arms)
    if "arm" not in frame.columns:
        raise BadInputError(
            f"{path.name} has no arm column: the mapping expects {_source_of(mapping, 'arm')} "
            f"(known arms: {known}).",
            "Map the export's treatment column onto `arm` in [input.mapping.renames]; the file has: "
            f"{', '.join(map(str, frame.columns[:25]))}.",
        )
    arms = frame["arm"].astype(str).where(frame["arm"].notna(), "<missing>")
    unknown = arms[~arms.isin(spec.arms)].value_counts()
    if len(unknown):
        listed = ", ".join(f"{v!r} ({n} records)" for v, n in unknown.items())
        raise BadInputError(
            f"{path.name}: unknown arm value(s) in {_source_of(mapping, 'arm')}: {listed}. "
            f"Known arms: {known}.",
            "Map them onto a known arm with [input.mapping.value_maps.arm], or add them to trial.arms.",
        )


def read_trial_registry(source: Path, mapping: RegistryMapping) -> TrialRecords:
    """Read, reshape, map and validate a trial export (see module doc)."""
    path = find_table(source, mapping.file)
    raw = read_table(path)
    reshaped, q_reshape = reshape_export(raw, mapping)
    return trial_records(reshaped, q_reshape, mapping, path, list(raw.columns), len(raw))


def read_trial_records(
    config: ChemoPipelineConfig, source_dir: Path, mapping: RegistryMapping
) -> TrialRecords:
    """The trial export read, reshaped, mapped and validated on the configured engine (`spark_trial.py`
    for Spark: the row filter and pivot per group of patients there, the rest on the records)."""
    if config.engine != "spark":
        return read_trial_registry(source_dir, mapping)
    from ..sources.spark_catalog import SparkTables
    from ..sources.spark_engine import start_session
    from .spark_trial import read_trial_registry_spark

    tables = SparkTables(start_session(config.spark))
    try:
        return read_trial_registry_spark(tables, source_dir, mapping)
    finally:
        tables.close()


def trial_records(
    reshaped: pd.DataFrame,
    q_reshape: pd.DataFrame,
    mapping: RegistryMapping,
    path: Path,
    raw_columns: list[str],
    n_source_rows: int,
) -> TrialRecords:
    """The export's records after its row filter and pivot (`reshape_export`, on pandas or per group
    of patients on Spark) mapped, arm-checked and validated: one row per patient (see module doc)."""
    spec = trial_spec(mapping)
    arm_sources = [src for src, dst in mapping.renames.items() if dst == "arm"]
    if arm_sources and arm_sources[0] not in reshaped.columns:
        check_arms(reshaped.drop(columns="arm", errors="ignore"), mapping, path)  # names the missing column
    frame = apply_mapping(reshaped, mapping)
    check_arms(frame, mapping, path)
    needed = [
        *TRIAL_REQUIRED,
        *spec.state_columns,
        *(s.treated_days for s in spec.stages),
        *(h for s in spec.stages for h in s.history),
    ]
    missing = [col for col in dict.fromkeys(needed) if col not in frame.columns]
    if missing:
        raise BadInputError(
            f"{path} lacks the trial column(s) {', '.join(missing)} (after the mapping).",
            "Map them in [input.mapping.renames] (or [pivot] for a long export); the file has: "
            f"{', '.join(map(str, raw_columns[:25]))}.",
        )
    frame = frame.reset_index(drop=True)
    schema = trial_schema(list(spec.state_columns))
    split = split_valid(frame, schema, stage="trial_schema", key_columns=[], id_column="patient_id")
    kept = schema.validate(split.kept).reset_index(drop=True)
    twice = kept["patient_id"].duplicated(keep=False)
    q_twice = make_quarantine(
        kept[twice],
        stage="records",
        rule="duplicate_patient",
        column=None,
        reason="a trial registry holds one row per patient",
        key_columns=[],
        id_column="patient_id",
    )
    parts = [q for q in (split.quarantined, q_twice) if len(q)]
    return TrialRecords(
        patients=kept[~twice].sort_values("patient_id", kind="stable").reset_index(drop=True),
        reshape_quarantine=q_reshape,
        record_quarantine=pd.concat(parts, ignore_index=True) if parts else empty_quarantine(),
        path=path,
        n_source_rows=n_source_rows,
        n_records=len(frame),
    )


def endpoint(patients: pd.DataFrame, reward: ChemoRewardConfig) -> tuple[np.ndarray, np.ndarray]:
    """(observed days, event flag) of the configured endpoint for every patient.

    `survival`: death. `progression_free`: the first of progression (recurrence) and death. A
    patient without the event is censored at `followup_days`, or else at `death_days`.
    """
    death = patients["death_days"].to_numpy(np.float64)
    died = patients["death_event"].to_numpy(np.float64) == 1
    follow = patients["followup_days"].to_numpy(np.float64) if "followup_days" in patients else death
    follow = np.where(np.isnan(follow), death, follow)
    time = np.where(died, death, follow)
    event = died.copy()
    if reward.outcome == "progression_free" and "progression_days" in patients:
        prog = patients["progression_days"].to_numpy(np.float64)
        flag = patients.get("progression_event")
        progressed = ~np.isnan(prog) & (
            flag.to_numpy(np.float64) == 1 if flag is not None else np.ones(len(prog), bool)
        )
        time = np.where(progressed, np.where(died, np.minimum(prog, death), prog), time)
        event |= progressed
    return time, event


def arm_index(patients: pd.DataFrame, spec: TrialSpec) -> np.ndarray:
    """The stage-1 action: position of each patient's arm in `trial.arms`."""
    lookup = {arm: k for k, arm in enumerate(spec.arms)}
    return np.asarray(patients["arm"].astype(str).map(lookup).to_numpy(np.int64))
