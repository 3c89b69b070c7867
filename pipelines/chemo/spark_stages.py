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
Trial records (one record per patient) have their own, shorter Spark path (`spark_trial.py`). The
functions the UDFs run are in `spark_parts.py`; this module drives them.
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
from dosewise.data_schemas import empty_quarantine, trajectory_schema_for

from ..simulators.oncology_params import load_oncology_parameters
from ..sources.spark_catalog import SparkTables, to_pandas
from ..sources.spark_engine import start_session
from ..sources.spark_frames import Schemas, apply_by_key_outputs, frame_types, shuffle_partitions
from .canonical import HELD_PREFIX
from .manifests import episode_id_function
from .registry import load_mapping
from .run_outputs import record_stages, write_tables
from .run_state import ChemoRun, dataset_info
from .sources import detect_chemo_source
from .spark_omop import open_omop_spark
from .spark_parts import KEY, Q_TYPES, ROW, first_part, registry_part, second_part
from .spark_registry import PATIENT_KEY, SparkRegistry, read_registry_spark
from .stage_runs import after_first_pass
from .states import LAB_COLUMNS

#: Sample patients whose rows give the declared dtypes of the UDF outputs (grown when all are quarantined).
SAMPLE_PATIENTS = (25, 250, None)


@dataclass
class SparkBoundary:
    """What `stage_runs.after_first_pass` reads of the batches, for a Spark run (one batch): the
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
        run.add_cycle_notes(r["notes"])
        for col, n in r["missing"].items():
            run.missing[col] += n
        if r.get("first_cycle") is not None:
            run.note_first_cycle(*r["first_cycle"])


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
        write_tables(run, per)


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
            after_first_pass(run, boundary)
        second_pass_spark(run, tables, held, frames[1] if len(frames) > 1 else None)
    finally:
        tables.close()
    record_stages(run)


__all__ = ["run_cycle_stages_spark"]
