"""Synthetic MIMIC-IV: raw `hosp/` and `icu/` tables with planted Sepsis-3 cases, any size.

`write_synthetic_icu` generates stays chunk by chunk (numpy-vectorised over the chunk) and
appends each chunk to streaming writers, so memory stays bounded from 10 to 100,000+ stays. The
ETL reads the result exactly as it reads real MIMIC-IV. A `truth/stays` table (not part of
MIMIC) records what was planted per stay, for checking an ETL against known answers.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pyarrow as pa

from dosewise.data_schemas import BadInputError, RunManifest, StageRecord, staged_output
from dosewise.data_schemas.console import progress

from . import synthetic_icu_tables as t
from .synthetic_icu_charts import chartevents_table
from .synthetic_icu_config import SyntheticIcuConfig
from .synthetic_icu_dirt import dirty_chartevents, dirty_inputevents
from .synthetic_icu_infusions import inputevents_table, procedureevents_table
from .synthetic_icu_labs import labevents_table, outputevents_table
from .synthetic_icu_orders import (
    InfectionCare,
    infection_care,
    microbiologyevents_table,
    prescriptions_table,
)
from .synthetic_icu_physiology import SEPTIC, Cohort, Course, draw_cohort, simulate_course
from .synthetic_icu_stays import (
    HOUR,
    IdCounters,
    Timeline,
    admissions_table,
    build_timeline,
    icustays_table,
    labels,
    patients_table,
    times,
)
from .table_writers import TableWriter, open_table_writer

CHUNK_TABLES = ("patients", "admissions", "icustays", "chartevents", "labevents",
                "microbiologyevents", "prescriptions", "inputevents", "outputevents",
                "procedureevents")
TRUTH_TABLE = "truth/stays"
CASES = ["none", "sepsis", "infection_only", "other_shock"]
PRESSORS = ["norepinephrine", "phenylephrine", "epinephrine", "dopamine"]
TRUTH_SCHEMA = pa.schema([
    ("stay_id", t.INT), ("subject_id", t.INT), ("hadm_id", t.INT), ("case", t.STR),
    ("planted_sepsis", pa.bool_()), ("infection_time", t.TIME), ("culture_time", t.TIME),
    ("antibiotic_time", t.TIME), ("severity", t.FLOAT), ("antibiotic_responder", pa.bool_()),
    ("age_at_admission", t.INT), ("is_minor", pa.bool_()), ("is_readmission", pa.bool_()),
    ("died_in_icu", pa.bool_()), ("died_in_hospital", pa.bool_()),
    ("died_after_discharge", pa.bool_()), ("weight_kg", t.FLOAT), ("admission_weight_uom", t.STR),
    ("vasopressor", t.STR), ("vasopressor_rate_uom", t.STR), ("arterial_line", pa.bool_()),
    ("max_norepi_eq_mcg_kg_min", t.FLOAT), ("total_bolus_ml", t.FLOAT),
    ("ever_ventilated", pa.bool_()), ("min_map_mmhg", t.FLOAT), ("max_lactate_mmol_l", t.FLOAT),
])


def _hours_to_time(tl: Timeline, hours: np.ndarray) -> pa.Array:
    ok = np.isfinite(hours)
    seconds = tl.intime + (np.nan_to_num(hours) * HOUR).astype(np.int64) // 60 * 60
    return times(seconds, ok)


def truth_table(c: Cohort, course: Course, tl: Timeline, care: InfectionCare) -> pa.Table:
    """What was planted per stay: case, infection care times, outcomes, unit quirks, treatment."""
    inside = course.in_stay()
    hourly = course.hourly
    return pa.table({
        "stay_id": tl.stay_id, "subject_id": tl.subject_id, "hadm_id": tl.hadm_id,
        "case": labels(CASES, c.case), "planted_sepsis": c.case == SEPTIC,
        "infection_time": _hours_to_time(tl, c.infection_h),
        "culture_time": _hours_to_time(tl, care.culture_h),
        "antibiotic_time": _hours_to_time(tl, care.antibiotic_h), "severity": c.severity,
        "antibiotic_responder": c.responder, "age_at_admission": tl.age_at_admission,
        "is_minor": tl.age_at_admission < 18, "is_readmission": c.is_second,
        "died_in_icu": course.died_icu, "died_in_hospital": tl.died_in_hospital,
        "died_after_discharge": tl.died_after_discharge, "weight_kg": c.weight_kg,
        "admission_weight_uom": labels(["kg", "lbs"], c.weight_lb.astype(int)),
        "vasopressor": labels(PRESSORS, c.pressor_kind),
        "vasopressor_rate_uom": labels(["mcg/kg/min", "mcg/min"], c.mcg_min.astype(int)),
        "arterial_line": c.arterial,
        "max_norepi_eq_mcg_kg_min": np.where(inside, hourly["ne_eq"], 0).max(axis=1),
        "total_bolus_ml": np.where(inside, hourly["bolus_ml"], 0).sum(axis=1),
        "ever_ventilated": (inside & (hourly["vent"] > 0)).any(axis=1),
        "min_map_mmhg": np.where(inside, hourly["map"], np.inf).min(axis=1).round(1),
        "max_lactate_mmol_l": np.where(inside, hourly["lactate"], 0).max(axis=1).round(2),
    }, schema=TRUTH_SCHEMA)


def generate_chunk(seed: int, chunk: int, n: int, config: SyntheticIcuConfig, ids: IdCounters,
                   pools: tuple[np.ndarray, np.ndarray], dirt: Counter[str]) -> dict[str, pa.Table]:
    """All tables for `n` stays of chunk number `chunk` (independent random streams per table)."""
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence([seed, chunk]).spawn(10)]
    providers, caregivers = pools
    cohort = draw_cohort(rngs[0], n, config)
    course = simulate_course(rngs[1], cohort)
    tl = build_timeline(rngs[2], cohort, course, ids)
    care = infection_care(rngs[3], cohort)
    tables = {
        "patients": patients_table(rngs[2], cohort, tl),
        "admissions": admissions_table(rngs[2], tl, providers),
        "icustays": icustays_table(rngs[2], tl),
        "chartevents": chartevents_table(rngs[4], cohort, course, tl, config, caregivers),
        "labevents": labevents_table(rngs[5], cohort, course, tl, ids, providers),
        "microbiologyevents": microbiologyevents_table(rngs[6], cohort, care, tl, ids, providers),
        "prescriptions": prescriptions_table(rngs[6], cohort, care, tl, ids, providers),
        "inputevents": inputevents_table(rngs[7], cohort, course, tl, ids, caregivers,
                                         config.litre_fraction),
        "outputevents": outputevents_table(rngs[8], cohort, course, tl, caregivers),
        "procedureevents": procedureevents_table(rngs[8], cohort, course, tl, ids, caregivers),
        TRUTH_TABLE: truth_table(cohort, course, tl, care),
    }
    if config.dirt_rate > 0:
        tables["chartevents"] = dirty_chartevents(rngs[9], tables["chartevents"],
                                                  config.dirt_rate, dirt)
        tables["inputevents"] = dirty_inputevents(rngs[9], tables["inputevents"],
                                                  config.dirt_rate, dirt)
    return tables


def dictionary_tables() -> dict[str, pa.Table]:
    """`icu/d_items` and `hosp/d_labitems` for every item id the generator writes."""
    d_items = pa.Table.from_pylist(
        [dict(zip(t.table_columns("d_items"), row, strict=True)) for row in t.D_ITEMS],
        schema=t.table_schema("d_items"))
    d_labitems = pa.Table.from_pylist(
        [{"itemid": v[0], "label": v[1], "fluid": v[2], "category": v[3]} for v in t.LABS.values()],
        schema=t.table_schema("d_labitems"))
    return {"d_items": d_items, "d_labitems": d_labitems}


def _pools(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Provider ids ('P' + 5 characters, as MIMIC-IV v2.2) and caregiver ids."""
    rng = np.random.default_rng([seed, 2**31 - 1])
    alphabet = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    codes = alphabet[rng.integers(0, alphabet.size, (400, 5))]
    providers = np.array(["P" + "".join(row) for row in codes], dtype=object)
    return providers, np.sort(rng.choice(np.arange(10_000, 100_000), 1500, replace=False))


def _count_planted(truth: pa.Table, planted: Counter[str]) -> None:
    """Add a chunk's planted cases and outcomes to the running totals."""
    for name in ("planted_sepsis", "is_minor", "is_readmission", "died_in_icu", "died_in_hospital",
                 "died_after_discharge", "ever_ventilated"):
        planted[name] += int(np.count_nonzero(truth[name].to_numpy(zero_copy_only=False)))
    planted["stays"] += truth.num_rows


def _write_chunk(writers: dict[str, TableWriter], tables: dict[str, pa.Table],
                 seconds: dict[str, float]) -> None:
    """Append one chunk's tables to their files (runs on the writer thread)."""
    for name, table in tables.items():
        started = time.perf_counter()
        writers[name].write(table)
        seconds[name] += time.perf_counter() - started


def _relpath(name: str, file_format: str) -> str:
    return f"{name}.{file_format}" if name == TRUTH_TABLE else t.table_relpath(name, file_format)


def write_synthetic_icu(out_dir: Path | str, n_stays: int, seed: int = 0, show_progress: bool = True,
                        *, config: SyntheticIcuConfig | None = None,
                        file_format: str | None = None) -> RunManifest:
    """Write MIMIC-IV-shaped raw tables for `n_stays` ICU stays into `out_dir` (manifest last).

    Args:
        file_format: "csv.gz" (as MIMIC-IV ships), "csv" or "parquet"; overrides the config's.
    """
    config = _resolve_config(n_stays, seed, config, file_format)
    with staged_output(out_dir) as work:
        manifest = RunManifest.start("synthetic_mimic_iv",
                                     {**config.model_dump(mode="json"), "n_stays": n_stays}, seed=seed)
        rows, seconds, dirt, planted = _stream_chunks(work, n_stays, seed, config, show_progress)
        manifest.stages = [StageRecord(name=name, rows_in=rows[name], rows_out=rows[name],
                                       seconds=round(seconds[name], 3), note="rows written")
                           for name in rows]
        manifest.extra = {
            "mimic_version": "2.2", "file_format": config.file_format, "rows": rows,
            "generate_seconds": round(seconds["generate"], 3),
            "write_seconds": round(sum(v for k, v in seconds.items() if k != "generate"), 3),
            "dirt": dict(sorted(dirt.items())), "planted": dict(sorted(planted.items())),
            "truth_table": _relpath(TRUTH_TABLE, config.file_format),
        }
        manifest.record_outputs(work)
        manifest.write(work)
    return manifest


def _resolve_config(n_stays: int, seed: int, config: SyntheticIcuConfig | None,
                    file_format: str | None) -> SyntheticIcuConfig:
    """Check the arguments and fold `file_format` into the config."""
    if not isinstance(n_stays, int) or n_stays < 1:
        raise BadInputError(f"`n_stays` must be a positive integer. Got {n_stays!r}.",
                            "Pass --stays N with N >= 1.")
    if not isinstance(seed, int) or seed < 0:
        raise BadInputError(f"`seed` must be a non-negative integer. Got {seed!r}.",
                            "Pass --seed S with S >= 0.")
    config = config or SyntheticIcuConfig()
    if file_format is None:
        return config
    if file_format not in t.FORMATS:
        raise BadInputError(f"`format` must be one of {', '.join(t.FORMATS)}. Got {file_format!r}.",
                            "Use csv.gz (as MIMIC-IV ships), csv or parquet.")
    return config.model_copy(update={"file_format": file_format})


def _stream_chunks(out: Path, n_stays: int, seed: int, config: SyntheticIcuConfig,
                   show_progress: bool) -> tuple[dict[str, int], dict[str, float], Counter[str],
                                                 Counter[str]]:
    """Generate chunk after chunk and append it to every table; returns rows per table, seconds
    per step, and the dirt and planted-case counts."""
    fmt, ids, pools = config.file_format, IdCounters(), _pools(seed)
    dirt: Counter[str] = Counter()
    planted: Counter[str] = Counter()
    seconds: dict[str, float] = defaultdict(float)
    n_chunks = -(-n_stays // config.chunk_stays)
    with ExitStack() as stack:
        writers = {name: stack.enter_context(open_table_writer(
            out / _relpath(name, fmt), TRUTH_SCHEMA if name == TRUTH_TABLE else t.table_schema(name),
            fmt, config.gzip_level)) for name in (*CHUNK_TABLES, TRUTH_TABLE)}
        for name, table in dictionary_tables().items():
            with open_table_writer(out / _relpath(name, fmt), table.schema, fmt,
                                   config.gzip_level) as writer:
                writer.write(table)
        # One writer thread formats and compresses chunk k while chunk k+1 is generated (arrow's
        # CSV writer and zlib release the GIL); at most two chunks are in memory at once.
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        pending: Future[None] | None = None
        for chunk in progress(range(n_chunks), desc=f"synthetic ICU stays ({config.chunk_stays}/chunk)",
                              total=n_chunks, show=show_progress):
            size = min(config.chunk_stays, n_stays - chunk * config.chunk_stays)
            started = time.perf_counter()
            tables = generate_chunk(seed, chunk, size, config, ids, pools, dirt)
            seconds["generate"] += time.perf_counter() - started
            _count_planted(tables[TRUTH_TABLE], planted)
            if pending is not None:
                pending.result()
            pending = pool.submit(_write_chunk, writers, tables, seconds)
        if pending is not None:
            pending.result()
        rows = {name: writer.rows for name, writer in writers.items()}
    return rows, seconds, dirt, planted
