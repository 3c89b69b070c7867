"""The cycle-level chemotherapy ETL (registry or OMOP) run stage by stage, in patient batches.

Stages (`stages.CHEMO_STAGES`, in order): sources, cycles, units, states, trajectories, outputs. OMOP input is
read and joined in DuckDB, then handed on in batches of `input.batch_patients` patients, in
episode-id order (a registry export is one batch). Two passes keep memory bounded by the batch:

1. per batch: boundary checks (sources), cycle rules (cycles), unit conversion (units), the
   canonical cycles and patients with labs held forward (states), written to a part file;
2. the run-wide parts: medians of the held labs (DuckDB over the part files, exact as pandas
   takes them), episode ids and the patient-level split of the kept patients;
3. per batch: labs filled (states), states, actions, rewards, ends, validated (trajectories),
   appended to `trajectories.parquet` (outputs), so the file is the batches' rows in order.

Every output is what one pass over all patients at once gives (tests/pipelines/chemo_fingerprint).
Each stage's counts and seconds are summed over the batches and recorded once. The run's state is
`run_state.ChemoRun`; the cohort, splits, quarantine files and stage records are made by
`run_outputs.py`, as for the Spark engine (`spark_stages.py`), which also shares `after_first_pass`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dosewise.data_schemas import (
    BadInputError,
    counts_by_rule,
    parquet_appender,
    sha256_file,
    trajectory_schema_for,
    validate_frame,
    write_table_atomic,
)
from dosewise.data_schemas.sql_checks import quote

from ..rule_tables import rule_sha256
from ..simulators.oncology_params import load_oncology_parameters
from .canonical import HELD_PREFIX, canonical_cycles, canonical_patients, fill_labs, hold_labs
from .cycles import apply_cycle_rules, unknown_regimen_error
from .manifests import episode_id_function, episode_ids
from .rewards import (
    censoring_curves,
    censoring_strata,
    first_actions,
    patient_outcomes,
)
from .run_outputs import per_episode, record_stages, write_tables
from .run_state import ChemoRun, dataset_info
from .sources import CycleBatches, covered_by, detect_chemo_source, open_chemo_source
from .states import LAB_COLUMNS
from .trajectories import add_actions, assemble
from .units import convert_units

RULE_FILES = (
    "chemo_regimens.csv",
    "chemo_units.csv",
    "chemo_dose_modifications.csv",
    "oncology_model_parameters.csv",
    "omop_concepts.csv",
)


def _batch_sources(run: ChemoRun, batches: CycleBatches, j: int) -> pd.DataFrame:
    """Sources, per batch: the batch's checked rows; the simulator truth's coverage of them."""
    src = run.need("src")
    with run.clock("sources") as t:
        rows, q = batches.batch(j)
        t.quarantine.append(q)
        t.rows_out += len(rows)
        if src.behaviour_path is not None and run.covered:
            behaviour = batches.behaviour(j)
            run.covered = behaviour is not None and covered_by(behaviour, rows)
    return rows


def _batch_cycles(run: ChemoRun, rows: pd.DataFrame) -> pd.DataFrame:
    """Cycles, per batch: the cycle rules (unknown regimens counted; an error once all are read)."""
    with run.clock("cycles") as t:
        result = apply_cycle_rules(rows, "quarantine", run.config.actions.max_rdi)
        t.quarantine.append(result.quarantined())
        t.rows_in += len(rows)
        t.rows_out += len(result.cycles)
        run.add_cycle_notes(result.notes)
    return result.cycles


def _batch_units_and_states(run: ChemoRun, kept: pd.DataFrame, j: int, part: Path) -> None:
    """Units and states, per batch: count units converted; canonical cycles, labs held, written."""
    with run.clock("units") as t:
        converted, q_units, n_values = convert_units(kept)
        t.quarantine.append(q_units)
        t.rows_in += n_values
        t.rows_out += n_values - len(q_units)
    with run.clock("states") as t:
        cycles = canonical_cycles(converted)
        patients = canonical_patients(converted, cycles)
        held, missing = hold_labs(cycles)
        for col, n in missing.items():
            run.missing[col] += n
        write_table_atomic(held, part)
        run.parts.append((j, part, patients))
        if run.config.reward.censoring == "ipcw_km":  # G is fitted on all patients between the passes
            run.first_actions.append(first_actions(add_actions(cycles, run.config.actions.rdi_edges)))
        t.rows_in += len(converted)
        run.note_first_cycle(str(cycles["patient_id"].iloc[0]), cycles["planned_interval_days"].iloc[0])


def first_pass(run: ChemoRun, batches: CycleBatches, parts: Path, bar: Any) -> None:
    """Sources, cycles, units and the first half of states, batch by batch (module doc, step 1)."""
    for j in range(batches.n_batches):
        rows = _batch_sources(run, batches, j)
        if not rows.empty:
            kept = _batch_cycles(run, rows)
            if not kept.empty:
                _batch_units_and_states(run, kept, j, parts / f"{j:06d}.parquet")
        bar.update(1)
    batches.release_rows()


def held_medians(run: ChemoRun) -> dict[str, float]:
    """Per lab missing anywhere: the median of the held values over all part files (DuckDB).

    The middle value (or the two middle values, averaged by numpy as pandas does) of the sorted
    non-missing values, so the fill is the one a single pass over all cycles makes.
    """
    labs = [col for col in LAB_COLUMNS if run.missing[col]]
    if not labs:
        return {}
    files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for _, p, _ in run.parts) + "]"
    medians = {}
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET memory_limit = '{run.config.input.duckdb_memory_limit}'")
        con.execute(f"SET threads = {int(run.config.input.duckdb_threads)}")
        for lab in labs:
            col = quote(HELD_PREFIX + lab)
            known = f"FROM read_parquet({files}) WHERE {col} IS NOT NULL AND NOT isnan({col})"
            n = int(con.execute(f"SELECT count(*) {known}").fetchall()[0][0])
            if not n:
                medians[lab] = 0.0
                continue
            middle = con.execute(
                f"SELECT {col} {known} ORDER BY {col} LIMIT {2 - n % 2} OFFSET {(n - 1) // 2}"
            ).fetchall()
            medians[lab] = float(np.median(np.array([r[0] for r in middle], dtype=np.float64)))
    finally:
        con.close()
    return medians


def after_first_pass(run: ChemoRun, batches: CycleBatches) -> None:
    """The run-wide checks and frames between the passes (module doc, step 2)."""
    if run.unknown_regimens and run.config.input.unknown_regimen == "error":
        counts = dict(sorted(run.unknown_regimens.items(), key=lambda kv: -kv[1]))
        raise unknown_regimen_error(counts)
    if not run.parts:
        q = run.totals["cycles"].quarantined()
        raise BadInputError(
            f"No cycle of {run.source_dir} passed the cycle rules: {counts_by_rule(q)}.",
            "See the quarantine counts; fix the records or the mapping config.",
        )
    src = run.need("src")
    src.behaviour_attached = src.behaviour_path is not None and run.covered
    if src.behaviour_attached:
        src.files.append(src.behaviour_path)
    run.has_prob = src.behaviour_attached and run.config.input.use_simulator_truth
    patients = pd.concat([p for _, _, p in run.parts], ignore_index=True)
    run.patients = patients.sort_values("patient_id", kind="stable").reset_index(drop=True)
    run.episode_ids, run.splits = episode_ids(run.patients, run.config, run.ids)
    if run.first_actions:  # reward.censoring = ipcw_km: G per stratum from all patients, once
        outcomes = patient_outcomes(run.patients, run.config.reward)
        strata = censoring_strata(pd.concat(run.first_actions), outcomes, run.config.reward)
        run.censoring = censoring_curves(outcomes, strata)
    sources = run.totals["sources"]
    sources.rows_in = batches.n_read
    sources.quarantine.insert(0, batches.boundary_quarantine())
    unknown = dict(sorted(run.unknown_regimens.items(), key=lambda kv: -kv[1]))
    run.notes = {**batches.notes, **{f"unknown_regimen:{k}": v for k, v in unknown.items()}, **run.notes}
    run.inputs = {str(p.relative_to(run.source_dir)): sha256_file(p) for p in sorted(src.files)}
    run.inputs.update({f"rules/{n}": rule_sha256(n) for n in RULE_FILES})


def second_pass(run: ChemoRun, batches: CycleBatches, bar: Any) -> None:
    """Labs filled, trajectories assembled, validated and appended, batch by batch (step 3)."""
    config = run.config
    with run.clock("states"):
        medians = held_medians(run)
    schema = trajectory_schema_for(dataset_info(config, run.has_prob))
    sd = load_oncology_parameters()["behaviour.dose_noise_sd"]
    interval = run.need("first_cycle")[1]
    per_episode_parts = []
    with parquet_appender(run.out_dir / "trajectories.parquet") as append:
        for j, part, patients in run.parts:
            with run.clock("states") as t:
                cycles = fill_labs(pd.read_parquet(part), run.missing, medians)
                t.rows_out += len(cycles)
            with run.clock("trajectories") as t:
                behaviour = batches.behaviour(j) if run.has_prob else None
                traj = assemble(cycles, patients, config, run.need("episode_ids"), behaviour, sd, interval,
                                run.censoring)
                traj = validate_frame(traj, schema, "chemo trajectories")
                t.rows_in += len(cycles)
                t.rows_out += len(traj)
            with run.clock("outputs") as t:
                append(traj)
                per_episode_parts.append(per_episode(traj))
                t.rows_in += len(traj)
            bar.update(1)
    run.notes["filled_values"] = {col: n for col, n in run.missing.items() if n}
    with run.clock("outputs"):
        write_tables(run, pd.concat(per_episode_parts))



def run_cycle_stages(run: ChemoRun) -> None:
    """Every stage of a cycle registry or OMOP run into `run.out_dir` (module doc); not the manifest."""
    config = run.config
    start = time.perf_counter()
    run.src = detect_chemo_source(run.source_dir, config.input.format)
    with (
        tempfile.TemporaryDirectory(prefix=".batches-", dir=run.out_dir) as tmp,
        open_chemo_source(run.src, config, episode_id_function(config, run.ids)) as batches,
    ):
        run.totals["sources"].seconds += time.perf_counter() - start
        quiet = not run.runner.show_progress or batches.n_batches < 2
        with tqdm(total=2 * batches.n_batches, desc="etl chemo: patient batches", leave=False,
                  file=sys.stderr, disable=quiet) as bar:
            first_pass(run, batches, Path(tmp), bar)
            after_first_pass(run, batches)
            second_pass(run, batches, bar)
    record_stages(run)
