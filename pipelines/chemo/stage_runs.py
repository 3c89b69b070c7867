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
Each stage's counts and seconds are summed over the batches and recorded once.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dosewise.data_schemas import (
    BadInputError,
    TrajectoryDatasetInfo,
    counts_by_rule,
    empty_quarantine,
    parquet_appender,
    sha256_file,
    trajectory_schema_for,
    validate_frame,
    write_table_atomic,
)
from dosewise.data_schemas import columns as c
from dosewise.data_schemas.sql_checks import quote

from ..outputs import write_frame_quarantine
from ..privacy import RunIds
from ..rule_tables import rule_sha256
from ..runner import StageLog, StageRunner
from ..simulators.oncology_params import load_oncology_parameters
from .canonical import HELD_PREFIX, canonical_cycles, canonical_patients, fill_labs, hold_labs
from .config import ChemoPipelineConfig
from .cycles import apply_cycle_rules, unknown_regimen_error
from .manifests import episode_id_function, episode_ids
from .rewards import (
    CensoringCurves,
    censoring_curves,
    censoring_strata,
    first_actions,
    patient_outcomes,
    reward_description,
)
from .sources import ChemoSource, CycleBatches, covered_by, detect_chemo_source, open_chemo_source
from .stages import STAGE_NAMES
from .states import LAB_COLUMNS, STATE_COLUMNS
from .trajectories import add_actions, assemble
from .units import convert_units

STAGES = STAGE_NAMES
RULE_FILES = (
    "chemo_regimens.csv",
    "chemo_units.csv",
    "chemo_dose_modifications.csv",
    "oncology_model_parameters.csv",
    "omop_concepts.csv",
)
QUARANTINED_BY = ("sources", "cycles", "units")  # the stages that write quarantine/<stage>.parquet


@dataclass
class StageTotals:
    """A stage's counts and seconds summed over the batches."""

    rows_in: int = 0
    rows_out: int = 0
    seconds: float = 0.0
    quarantine: list[pd.DataFrame] = field(default_factory=list)

    def quarantined(self) -> pd.DataFrame:
        """The batches' quarantine records in batch order (the writer sorts them by rule and key)."""
        parts = [q for q in self.quarantine if not q.empty]
        return pd.concat(parts, ignore_index=True) if parts else empty_quarantine(["patient_id"])


@dataclass
class ChemoRun:
    """What the stages hand each other: the source, per-stage totals and the run-wide frames."""

    config: ChemoPipelineConfig
    source_dir: Path
    out_dir: Path
    ids: RunIds
    runner: StageRunner
    src: ChemoSource | None = None
    totals: dict[str, StageTotals] = field(default_factory=lambda: {s: StageTotals() for s in STAGES})
    notes: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    #: per batch written: (batch, file of its canonical cycles with labs held, its patients)
    parts: list[tuple[int, Path, pd.DataFrame]] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LAB_COLUMNS, 0))
    unknown_regimens: dict[str, int] = field(default_factory=dict)
    first_cycle: tuple[str, float] | None = None  # (patient, planned interval) of the first row overall
    covered: bool = True
    patients: pd.DataFrame | None = None
    episode_ids: dict[str, str] | None = None
    splits: pd.DataFrame | None = None
    has_prob: bool = False
    first_actions: list[pd.Series] = field(default_factory=list)  # per batch, for the censoring strata
    censoring: CensoringCurves | None = None

    @contextmanager
    def clock(self, stage: str) -> Iterator[StageTotals]:
        """Add the block's seconds to `stage`."""
        start = time.perf_counter()
        yield self.totals[stage]
        self.totals[stage].seconds += time.perf_counter() - start

    def need(self, name: str) -> Any:
        """A value an earlier stage made (the stage order guarantees it)."""
        value = getattr(self, name)
        if value is None:
            raise RuntimeError(f"chemo stage order broken: `{name}` was not made before it is read")
        return value


def dataset_info(config: ChemoPipelineConfig, has_prob: bool) -> TrajectoryDatasetInfo:
    """The trajectory contract of a chemotherapy cycle run."""
    n = len(config.actions.rdi_edges) + 1
    return TrajectoryDatasetInfo(
        state_columns=list(STATE_COLUMNS),
        n_actions=n,
        continuous_action_columns=[c.RDI_FRACTION],
        action_bin_edges={c.RDI_FRACTION: list(config.actions.rdi_edges)},
        action_grid=[n],
        bin_hours=None,
        has_behaviour_prob=has_prob,
        ids_pseudonymised=config.output.pseudonymize_ids,
        reward_description=reward_description(config.reward, config.episode),
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
        for key, n in result.notes.items():
            if key.startswith("unknown_regimen:"):
                name = key.removeprefix("unknown_regimen:")
                run.unknown_regimens[name] = run.unknown_regimens.get(name, 0) + n
            else:
                run.notes[key] = run.notes.get(key, 0) + n
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
        first = str(cycles["patient_id"].iloc[0])
        if run.first_cycle is None or first < run.first_cycle[0]:
            run.first_cycle = (first, float(cycles["planned_interval_days"].iloc[0]))


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


def _after_first_pass(run: ChemoRun, batches: CycleBatches) -> None:
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
        _write_tables(run, pd.concat(per_episode_parts))


def per_episode(traj: pd.DataFrame) -> pd.DataFrame:
    """Cycles, mean RDI and whether the episode ended terminal, per episode of `traj`."""
    return traj.groupby(c.EPISODE_ID).agg(
        n_cycles=(c.STEP, "size"), mean_rdi=(c.RDI_FRACTION, "mean"), terminal=(c.TERMINAL, "any")
    )


def cohort_table(patients: pd.DataFrame, per: pd.DataFrame, ids: dict[str, str], raw: bool) -> pd.DataFrame:
    """One row per episode: covariates, outcome dates and `per` (cycles, mean RDI, terminal)."""
    out = patients.assign(episode_id=patients["patient_id"].astype(str).map(ids))
    out = out.merge(per, left_on="episode_id", right_index=True, how="inner")
    cols = ["episode_id", "regimen", "age_years", "sex_male", "ecog", "n_cycles", "mean_rdi", "terminal",
            "first_cycle_date", "progression_date", "death_date", "last_followup_date"]
    out = out[cols + (["patient_id"] if raw else [])]
    for col in ("first_cycle_date", "progression_date", "death_date", "last_followup_date"):
        out[col] = pd.to_datetime(out[col]).astype("datetime64[ns]")
    return out.sort_values("episode_id").reset_index(drop=True)


def _write_tables(run: ChemoRun, per: pd.DataFrame) -> None:
    out = run.out_dir
    splits = run.need("splits")
    write_table_atomic(splits.sort_values(c.EPISODE_ID).reset_index(drop=True), out / "splits.parquet")
    cohort = cohort_table(run.need("patients"), per, run.need("episode_ids"),
                          not run.config.output.pseudonymize_ids)
    write_table_atomic(cohort, out / "cohort.parquet")
    for stage in QUARANTINED_BY:
        q = run.totals[stage].quarantined()
        write_frame_quarantine(q, out / "quarantine" / f"{stage}.parquet", run.ids)


def _record_stages(run: ChemoRun) -> None:
    """Each stage's summed counts, as one record per stage in the manifest."""
    src, t = run.need("src"), run.totals
    q = {s: t[s].quarantined() for s in QUARANTINED_BY}
    assembled = t["sources"].rows_out
    grain = f"OMOP table rows (cycles assembled: {assembled})" if src.format == "omop" else "registry rows"
    n_read = t["sources"].rows_in
    logs = {
        "sources": StageLog(n_read, n_read - len(q["sources"]), counts_by_rule(q["sources"]),
                            note=f"grain: {grain}; {src.describe()}"),
        "cycles": StageLog(t["cycles"].rows_in, t["cycles"].rows_out, counts_by_rule(q["cycles"])),
        "units": StageLog(t["units"].rows_in, t["units"].rows_out, counts_by_rule(q["units"]),
                          note="grain: count values (ANC, nadir, platelets) converted to 1e9/L"),
        "states": StageLog(t["states"].rows_in, t["states"].rows_out,
                           note="missing labs held forward, then the median"),
        "trajectories": StageLog(t["trajectories"].rows_in, t["trajectories"].rows_out),
        "outputs": StageLog(t["outputs"].rows_in, t["outputs"].rows_in,
                            note="written: trajectories, splits, cohort, quarantine"),
    }
    for stage in STAGES:
        run.runner.add(stage, logs[stage], t[stage].seconds)


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
            _after_first_pass(run, batches)
            second_pass(run, batches, bar)
    _record_stages(run)
