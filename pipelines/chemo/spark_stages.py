"""The cycle-level chemotherapy ETL on Spark (`engine = "spark"`, OMOP CDM or flat registry input).

The stages are those of `stage_runs.py` (`stages.CHEMO_STAGES`) with the same outputs, counts and
manifest; what differs on Spark:

- sources: OMOP files are read and checked on Spark, and the cycle SQL runs there, transpiled
  (`spark_omop.py`), into the view `_rows` (one row per cycle); a registry export is read as a Spark
  DataFrame (`spark_registry.py`) and reshaped, mapped and checked per group of patients. There are
  no patient batches: Spark groups the patients (a hash bucket of the patient id, `apply_by_key`),
  so every group holds whole patients, as a batch does;
- cycles, units and the first half of states (registry schema, cycle rules, unit conversion,
  canonical cycles and patients, labs held forward) run as one grouped pandas UDF per group of
  patients, calling the same functions as the DuckDB engine (`check_rows` or `registry_rows`,
  `apply_cycle_rules`, `convert_units`, `canonical_cycles`, `canonical_patients`, `hold_labs`); the
  held cycles stay in Spark (`apply_by_key_outputs`);
- the medians of the held labs are taken on Spark, exactly as `held_medians` takes them (the middle
  value or values of the sorted known values, averaged by numpy);
- labs filled, trajectories assembled and validated (`fill_labs`, `assemble`, `validate_frame`) run as
  a second grouped UDF, cogrouped with the simulator's truth; Spark writes `trajectories.parquet` in
  (episode, step) order, the order the batches append it in.

Collected to the driver, all per patient or aggregate: the quarantine records, the patients frame
(for episode ids, splits and the IPCW censoring curves, as between the DuckDB passes), each group's
counts, the first cycle's planned interval, the medians and one row per episode (the cohort table);
to learn the UDF outputs' types, the functions also run once on the driver on a few patients' rows.
Trial records stay on DuckDB/pandas (`pipeline.py` exits 2 for them on Spark).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dosewise.data_schemas import columns as c
from dosewise.data_schemas import empty_quarantine, trajectory_schema_for, validate_frame
from dosewise.data_schemas.quarantine import QUARANTINE_COLUMNS

from ..simulators.oncology_params import load_oncology_parameters
from ..sources.spark_catalog import SparkTables, to_pandas
from ..sources.spark_engine import start_session
from ..sources.spark_frames import Schemas, apply_by_key_outputs, frame_types, shuffle_partitions
from .canonical import HELD_PREFIX, canonical_cycles, canonical_patients, fill_labs, hold_labs
from .cycles import apply_cycle_rules
from .manifests import episode_id_function
from .omop_cycles import check_rows, registry_shaped
from .registry import load_mapping, registry_rows
from .rewards import first_actions
from .sources import covered_by, detect_chemo_source
from .spark_omop import open_omop_spark
from .spark_registry import PATIENT_KEY, SparkRegistry, read_registry_spark, restore_dtypes
from .stage_runs import ChemoRun, _after_first_pass, _record_stages, _write_tables, dataset_info, per_episode
from .states import LAB_COLUMNS
from .trajectories import add_actions, assemble
from .units import convert_units

KEY = "patient_id"
ROW = "_file_row"  # a registry row's position in the export (the groups keep file order)
Q_TYPES = {**dict.fromkeys(QUARANTINE_COLUMNS, "string"), "patient_id": "string", "_stage": "string"}
#: Sample patients whose rows give the declared dtypes of the UDF outputs (grown when all are quarantined).
SAMPLE_PATIENTS = (25, 250, None)


@dataclass
class SparkBoundary:
    """What `stage_runs._after_first_pass` reads of the batches, for a Spark run (one batch): the
    quarantine of the checks made before the per-patient stages, files, rows read and notes."""

    quarantine: list[pd.DataFrame]
    files: list[Path]
    n_read: int
    notes: dict[str, int]
    n_batches: int = 1

    def boundary_quarantine(self) -> pd.DataFrame:
        """Quarantine records of the table checks, the cycle assembly and the measurements."""
        parts = [q.rename(columns={"person_id": "patient_id"}) for q in self.quarantine if not q.empty]
        return pd.concat(parts, ignore_index=True) if parts else empty_quarantine()


def _tag(q: pd.DataFrame, stage: str) -> pd.DataFrame:
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
    quarantine = [_tag(q_sources, "sources")]
    counts["sources_out"] = len(rows)
    if behaviour is not None:
        counts["covered"] = covered_by(behaviour.astype({KEY: str}), rows)
    if not rows.empty:
        result = apply_cycle_rules(rows, "quarantine", config.actions.max_rdi)
        quarantine.append(_tag(result.quarantined(), "cycles"))
        counts.update(cycles_in=len(rows), cycles_out=len(result.cycles), notes=result.notes)
        if not result.cycles.empty:
            converted, q_units, n_values = convert_units(result.cycles)
            quarantine.append(_tag(q_units, "units"))
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


def sample_schemas(
    fn: Any, frames: tuple[Any, ...], fixed: Schemas, key: str = KEY
) -> dict[str, dict[str, str]]:
    """The Spark types of `fn`'s outputs, read from its answer on the rows of a few patients (run on
    the driver: per-patient rows, not the table), the sample grown while an output comes out empty;
    `fixed` declares the outputs whose types a sample need not show."""
    from pyspark.sql import functions as F

    keys = frames[0].select(F.col(key).cast("string").alias(key)).distinct().orderBy(key)
    ids = [r[0] for r in keys.collect()]
    outputs: dict[str, pd.DataFrame] = {}
    for n in SAMPLE_PATIENTS:
        some = ids[:n] if n is not None else ids
        parts = [to_pandas(f.where(F.col(key).cast("string").isin(some))) for f in frames]
        outputs = fn(*parts)
        if all(len(frame) for name, frame in outputs.items() if name not in fixed) or len(some) == len(ids):
            break
    types = {name: frame_types(frame) for name, frame in outputs.items() if name not in fixed}
    return {**types, **{name: dict(kinds) for name, kinds in fixed.items()}}


def _behaviour_frame(run: ChemoRun, tables: SparkTables) -> Any:
    """The simulator's truth as a Spark DataFrame (None without truth/behaviour.parquet)."""
    path = run.need("src").behaviour_path
    return None if path is None else tables.spark.read.parquet(str(path))


def _sum_counts(run: ChemoRun, rows: list[dict[str, Any]]) -> None:
    """Each group's counts into the stage totals and the run's notes (as the batches add them)."""
    t = run.totals
    for r in rows:
        t["sources"].rows_out += r["sources_out"]
        t["cycles"].rows_in += r.get("cycles_in", 0)
        t["cycles"].rows_out += r.get("cycles_out", 0)
        t["units"].rows_in += r.get("units_in", 0)
        t["units"].rows_out += r.get("units_out", 0)
        t["states"].rows_in += r.get("states_in", 0)
        run.covered = run.covered and r.get("covered", True)
        for key, n in r["notes"].items():
            if key.startswith("unknown_regimen:"):
                name = key.removeprefix("unknown_regimen:")
                run.unknown_regimens[name] = run.unknown_regimens.get(name, 0) + n
            else:
                run.notes[key] = run.notes.get(key, 0) + n
        for col, n in r["missing"].items():
            run.missing[col] += n
        first = r.get("first_cycle")
        if first is not None and (run.first_cycle is None or first[0] < run.first_cycle[0]):
            run.first_cycle = (first[0], float(first[1]))


def first_pass_spark(run: ChemoRun, tables: SparkTables, frames: tuple[Any, ...], fn: Any, key: str) -> Any:
    """Sources (schema), cycles, units and held labs on Spark (`fn` on groups of whole patients by
    `key`, of the rows and the simulator's truth); returns the held cycles (Spark)."""
    config = run.config
    fixed = {"q": Q_TYPES, "counts": {"json": "string"}, "first": {KEY: "string", "action": "bigint"}}
    schemas = sample_schemas(fn, frames, fixed, key)
    schemas.setdefault("held", {})
    schemas.setdefault("patients", {})
    outputs = apply_by_key_outputs(fn, frames, schemas, key=key, buckets=shuffle_partitions(tables.spark),
                                   key_type="string")
    _sum_counts(run, [json.loads(r[0]) for r in outputs["counts"].collect()])
    q = to_pandas(outputs["q"])
    for stage in ("sources", "cycles", "units"):
        run.totals[stage].quarantine.append(q[q["_stage"] == stage].drop(columns=["_stage"]))
    patients = to_pandas(outputs["patients"])
    if len(patients):
        run.parts = [(0, run.out_dir, patients)]
    if config.reward.censoring == "ipcw_km":
        first = to_pandas(outputs["first"])
        run.first_actions = [pd.Series(first["action"].to_numpy(), index=first[KEY].to_numpy())]
    return outputs["held"]


def held_medians_spark(run: ChemoRun, held: Any) -> dict[str, float]:
    """`stage_runs.held_medians` on Spark: per lab missing anywhere, the middle held value(s) of
    all cycles, averaged by numpy (0.0 when none is known)."""
    from pyspark.sql import functions as F

    medians = {}
    for lab in [col for col in LAB_COLUMNS if run.missing[col]]:
        col = F.col(HELD_PREFIX + lab)
        known = held.where(col.isNotNull() & ~F.isnan(col)).select(col.alias("v"))
        n = known.count()
        if not n:
            medians[lab] = 0.0
            continue
        middle = known.orderBy("v").offset((n - 1) // 2).limit(2 - n % 2).collect()
        medians[lab] = float(np.median(np.array([r[0] for r in middle], dtype=np.float64)))
    return medians


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


def second_pass_spark(run: ChemoRun, tables: SparkTables, held: Any, behaviour: Any) -> None:
    """Labs filled, trajectories on Spark, written in (episode, step) order; splits, cohort and the
    quarantine files as on DuckDB."""
    from pyspark.sql import functions as F

    config = run.config
    with run.clock("states"):
        medians = held_medians_spark(run, held)
    values = {"config": config, "missing": dict(run.missing), "medians": medians,
              "patients": run.need("patients"), "episode_ids": run.need("episode_ids"),
              "censoring": run.censoring, "schema": trajectory_schema_for(dataset_info(config, run.has_prob)),
              "sd": load_oncology_parameters()["behaviour.dose_noise_sd"],
              "interval": run.need("first_cycle")[1]}
    truth = behaviour if run.has_prob else None

    def fn(part: pd.DataFrame, b: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
        return second_part(values, part, b)

    frames = (held,) if truth is None else (held, truth)
    start = time.perf_counter()
    schemas = sample_schemas(fn, frames, {"counts": {"cycles": "bigint", "traj": "bigint"}})
    outputs = apply_by_key_outputs(fn, frames, schemas, key=KEY, buckets=shuffle_partitions(tables.spark),
                                   key_type="string")
    n = outputs["counts"].agg(F.sum("cycles"), F.sum("traj")).collect()[0]
    run.totals["states"].rows_out += int(n[0] or 0)
    run.totals["trajectories"].rows_in += int(n[0] or 0)
    run.totals["trajectories"].rows_out += int(n[1] or 0)
    run.totals["trajectories"].seconds += time.perf_counter() - start
    run.notes["filled_values"] = {col: k for col, k in run.missing.items() if k}
    with run.clock("outputs") as t:
        traj = outputs["traj"].orderBy(c.EPISODE_ID, c.STEP)
        tables.write_frame(traj, run.out_dir / "trajectories.parquet")
        t.rows_in += int(n[1] or 0)
        per = to_pandas(outputs["per"]).set_index(c.EPISODE_ID)
        _write_tables(run, per)


def _open_omop(run: ChemoRun, tables: SparkTables) -> tuple[Any, tuple[Any, ...], Any, str]:
    """OMOP input on Spark: (the boundary, the first pass's frames, its function, its key)."""
    config = run.config
    omop = open_omop_spark(tables, run.source_dir, config, episode_id_function(config, run.ids))
    run.need("src").files = omop.files
    behaviour = _behaviour_frame(run, tables)
    frames = (tables.spark.table("_rows"),) + (() if behaviour is None else (behaviour,))

    def fn(part: pd.DataFrame, truth: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
        return first_part(config, part, truth)

    return SparkBoundary(omop.quarantine, omop.files, omop.n_read, omop.notes), frames, fn, KEY


def _open_registry(run: ChemoRun, tables: SparkTables) -> tuple[Any, tuple[Any, ...], Any, str]:
    """A flat registry export on Spark: (the boundary, the first pass's frames, its function, its key)."""
    from pyspark.sql import functions as F

    from .spark_omop import with_row_numbers

    config = run.config
    registry = read_registry_spark(tables, run.source_dir, load_mapping(config.input.mapping))
    run.need("src").files = [registry.path]
    registry.rows = with_row_numbers(registry.rows).withColumnRenamed("_row", ROW)
    behaviour = _behaviour_frame(run, tables)
    frames = (registry.rows,) + (() if behaviour is None else (
        behaviour.withColumn(PATIENT_KEY, F.col(KEY).cast("string")),))
    holder = SparkRegistry(None, registry.path, registry.dtypes, registry.n_read)  # no DataFrame in the UDF

    def fn(part: pd.DataFrame, truth: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
        return registry_part(config, holder, part, truth)

    return SparkBoundary([], [registry.path], registry.n_read, {}), frames, fn, PATIENT_KEY


def run_cycle_stages_spark(run: ChemoRun) -> None:
    """Every stage of an OMOP or registry run into `run.out_dir` on Spark (module doc); not the manifest."""
    config = run.config
    start = time.perf_counter()
    run.src = detect_chemo_source(run.source_dir, config.input.format)
    tables = SparkTables(start_session(config.spark))
    try:
        opened = _open_omop(run, tables) if run.src.format == "omop" else _open_registry(run, tables)
        boundary, frames, fn, key = opened
        run.totals["sources"].seconds += time.perf_counter() - start
        start = time.perf_counter()
        held = first_pass_spark(run, tables, frames, fn, key)
        run.totals["cycles"].seconds += time.perf_counter() - start
        with run.clock("states"):
            _after_first_pass(run, boundary)
        second_pass_spark(run, tables, held, frames[1] if len(frames) > 1 else None)
    finally:
        tables.close()
    _record_stages(run)


__all__ = ["checked_part", "first_part", "registry_part", "run_cycle_stages_spark", "second_part"]
