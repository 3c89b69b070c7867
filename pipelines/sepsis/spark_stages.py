"""The sepsis stages that differ on Spark (`engine = "spark"`): doses, binning, states, trajectories,
outputs. The others (sources, concepts, cohort, stay_linkage, measurements) run as in `stage_runs`
on the `SparkCatalog`, their SQL transpiled.

Row-level data stays in Spark: the stage SQL makes persisted temporary views, and the stay x bin
grid, sample-and-hold, fill and derived states, actions, rewards and episode ends run as grouped
pandas UDFs over groups of whole stays (`apply_by_key`), calling the same pure functions as the
DuckDB engine (`make_grid`, `pivot_binned`, `post_binning_exclusions`, `hold_states`,
`fill_remaining`, `add_derived`, `apply_actions`, `add_rewards_and_ends`, `finite_states`), and the
trajectories are validated there, group by group (every check is per row or per episode).

Collected to the driver, all per stay or aggregate: the ICU stays and Sepsis-3 frames (the cohort
rules are pandas on one row per stay), the distinct stay ids of each quarantine (to key them), the
stays the exclusions removed, the train medians of the held variables (one number per variable), the
dose quantiles (the action edges), the imputed fractions and the row counts.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dosewise.data_schemas import columns as c
from dosewise.data_schemas import (
    trajectory_schema_for,
    validate_frame,
    write_table_atomic,
)
from dosewise.data_schemas.quarantine import QUARANTINE_COLUMNS

from ..cleaning.imputation import FILLED, fill_remaining, fill_values_from
from ..outputs import write_quarantine
from ..runner import StageLog
from ..sources.spark_catalog import materialize
from ..sources.spark_frames import apply_by_key, shuffle_partitions
from .actions import edge_quantiles, edges_from_quantiles
from .binning import pivot_binned
from .doses import fluid_in_windows, quarantine_doses
from .outputs import cohort_table
from .stage_runs import STAGE_RUNS, SepsisRun, trajectory_info
from .stage_sql import count_rows, run_sql_file
from .states import add_derived, fill_rules, hold_states, make_grid, pivot_measurements, state_columns
from .trajectories import (
    Exclusions,
    add_rewards_and_ends,
    apply_actions,
    episode_ids_and_splits,
    exclusion_funnel,
    finite_states,
    post_binning_exclusions,
)

DOSE_COLUMNS = ["fluid_ml", "fluid_raw_ml", c.NOREPI_EQ_MCG_KG_MIN]
MASK = "_mask_"  # prefix of the imputation mask codes carried beside the held values


def _by_stay(run: SepsisRun, fn: Any, *frames: Any, types: dict[str, str] | None = None) -> Any:
    cat = run.need("cat")
    return materialize(apply_by_key(fn, frames, buckets=shuffle_partitions(cat.spark), types=types))


def _small(run: SepsisRun, frame: pd.DataFrame, columns: list[str]) -> Any:
    """A per-stay pandas frame (cohort rows) as a Spark DataFrame."""
    from ..sources.spark_catalog import spark_frame

    return spark_frame(run.need("cat").spark, frame[columns])


def doses(run: SepsisRun, log: StageLog) -> None:
    """Dose rules, then fluid and vasopressor doses per stay x bin (the `dose_bins` view)."""
    cat = run.need("cat")
    counts = quarantine_doses(cat, run.config.doses.tonicity_adjusted)
    write_quarantine(cat, "q_doses", run.out_dir / "quarantine" / "doses.parquet", run.ids)
    run_sql_file(cat, "dose_bins", {"bin_seconds": run.h * 3600})
    run.extra["fluid_ml_in_window_kept"] = fluid_in_windows(cat)
    log.set(counts.rows_in, counts.rows_out, counts.quarantined_by_rule, counts.note)


def _grid(run: SepsisRun, variables: list[str]) -> Any:
    """The stay x bin grid with one column per variable, the doses (0 when none) and SOFA."""
    cat, h = run.need("cat"), run.h

    def stay_grid(windows: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
        return pivot_measurements(make_grid(windows, h), pivot_binned(long, variables), variables)

    grid = _by_stay(run, stay_grid, cat.spark.table("cohort_windows"), cat.spark.table("binned_measurements"),
                    types={"stay_id": "bigint", "bin": "bigint"})
    grid = grid.join(cat.spark.table("dose_bins"), ["stay_id", "bin"], "left").join(
        cat.spark.table("sofa_bins"), ["stay_id", "bin"], "left")
    return materialize(grid.fillna(0.0, subset=DOSE_COLUMNS))


def binning(run: SepsisRun, log: StageLog) -> None:
    """The stay x bin grid on Spark; the post-binning exclusions (quarantine rows stay in Spark)."""
    from pyspark.sql import functions as F

    cat, cohort_frame, config = run.need("cat"), run.need("cohort"), run.config
    variables = [*cat.rules["hold_hours"]["variable"], "urine_output_ml"]
    run_sql_file(cat, "binned_measurements")
    run_sql_file(cat, "sofa_bins", {"bin_seconds": run.h * 3600})
    grid = _grid(run, variables)
    run.extra["fluid_ml_binned"] = round(float(grid.agg(F.sum("fluid_ml")).collect()[0][0] or 0.0), 3)

    def excluded(part: pd.DataFrame, cohort_part: pd.DataFrame) -> pd.DataFrame:
        part = part.sort_values(["stay_id", "bin"], kind="stable").reset_index(drop=True)
        q = post_binning_exclusions(part, cohort_part, config, len(cohort_part)).quarantined
        return q[[*QUARANTINE_COLUMNS, "stay_id"]]

    cohort_rows = _small(run, cohort_frame, ["stay_id", "deathtime", "window_end"])
    quarantined = _by_stay(run, excluded, grid, cohort_rows,
                           types={**dict.fromkeys(QUARANTINE_COLUMNS, "string"), "stay_id": "bigint"})
    by_rule = {str(r): int(n) for r, n in quarantined.groupBy("rule").agg(
        F.countDistinct("stay_id")).collect()}
    gone = {int(r[0]) for r in quarantined.select("stay_id").distinct().collect()}
    keep = set(cohort_frame["stay_id"].tolist()) - gone
    run.excl = Exclusions(keep, exclusion_funnel(config, by_rule, len(cohort_frame)), quarantined)
    run.spark_frames["grid"] = grid
    n_grid = grid.count()
    n_values = int(cat.rows("SELECT count(*) FROM binned_measurements WHERE variable IN ("
                            + ", ".join(f"'{v}'" for v in variables) + ") AND value IS NOT NULL")[0][0])
    log.set(count_rows(cat, "kept_events"), n_values,
            note=f"grain: kept events -> stay x bin x variable aggregates; grid = {n_grid} stay x bin rows")


def _train_medians(run: SepsisRun, held: Any, variables: list[str], train: Any) -> dict[str, float]:
    """Median of each held variable over the train stays' bins (Spark's exact `percentile`)."""
    from pyspark.sql import functions as F

    rows = held.join(train, "stay_id", "left_semi").agg(
        *[F.percentile(F.col(v), F.lit(0.5)).alias(v) for v in variables]).collect()[0]
    return {v: rows[v] for v in variables}


def states(run: SepsisRun, log: StageLog) -> None:
    """Exclusions applied, episode ids and splits, sample-and-hold, fill and derived states on Spark."""
    from pyspark.sql import functions as F

    excl, hold, h, config = run.need("excl"), run.need("cat").rules["hold_hours"], run.h, run.config
    cohort_frame = run.need("cohort")
    cohort_frame = cohort_frame[cohort_frame["stay_id"].isin(excl.keep_stays)].reset_index(drop=True)
    grid = run.spark_frames["grid"]
    grid_in = grid.count()
    grid = grid.join(excl.quarantined.select("stay_id").distinct(), "stay_id", "left_anti")
    cohort_frame["episode_id"], splits = episode_ids_and_splits(cohort_frame, config, run.ids.salt)
    run.train_stays = set(cohort_frame.loc[splits[c.SPLIT].to_numpy() == "train", "stay_id"])
    variables = hold["variable"].tolist()

    def held_part(part: pd.DataFrame) -> pd.DataFrame:
        part = part.sort_values(["stay_id", "bin"], kind="stable").reset_index(drop=True)
        held, mask = hold_states(part, hold, h)
        return held.join(mask.add_prefix(MASK))

    held = _by_stay(run, held_part, grid, types={"stay_id": "bigint", "bin": "bigint"})
    train = _small(run, cohort_frame[cohort_frame["stay_id"].isin(run.train_stays)], ["stay_id"])
    defaults, always = fill_rules(hold)
    medians = _train_medians(run, held, variables, train) if config.imputation.fill == "train_median" else {}
    fills = fill_values_from(variables, config.imputation.fill, medians, defaults, always)

    def state_part(part: pd.DataFrame, cohort_part: pd.DataFrame) -> pd.DataFrame:
        part = part.sort_values(["stay_id", "bin"], kind="stable").reset_index(drop=True)
        masks = [f"{MASK}{v}" for v in variables]
        mask = part[masks].rename(columns=lambda m: m[len(MASK):]).astype("int8")
        filled = fill_remaining(part.drop(columns=masks), mask, fills)
        return add_derived(filled, cohort_part, h).join(mask.add_prefix(MASK))

    people = _small(run, cohort_frame, ["stay_id", "age_years", "gender"])
    out = _by_stay(run, state_part, held, people, types={"stay_id": "bigint", "bin": "bigint"})
    n = out.count()
    filled = out.agg(*[F.avg((F.col(f"{MASK}{v}") == FILLED).cast("double")).alias(v) for v in variables])
    fraction = filled.collect()[0] if n else None
    run.extra.update(fill_values=fills, filled_fraction={
        v: round(float(fraction[v]), 4) for v in variables} if fraction is not None else {})
    run.spark_frames["grid"] = out
    run.cohort, run.splits = cohort_frame, splits
    run.states = state_columns(hold, h)
    q = {str(r): int(k) for r, k in excl.quarantined.groupBy("rule").count().collect()}
    log.set(grid_in, n, dict(sorted(q.items())), rows_quarantined=sum(q.values()))


def _dose_edges(run: SepsisRun, grid: Any, fluid_col: str) -> dict[str, list[float]]:
    """Action edges from the non-zero train doses (Spark's exact `percentile`, numpy's interpolation)."""
    from pyspark.sql import functions as F

    n = run.config.actions.bins_per_dose
    train = _small(run, run.need("cohort")[run.need("cohort")["stay_id"].isin(run.train_stays)], ["stay_id"])
    rows = grid.join(train, "stay_id", "left_semi")
    edges = {}
    for col in (fluid_col, c.NOREPI_EQ_MCG_KG_MIN):
        levels = F.array(*[F.lit(q) for q in edge_quantiles(n)])
        inner = rows.where(F.col(col) > 0).agg(F.percentile(F.col(col), levels)).collect()[0][0]
        edges[col] = edges_from_quantiles(inner, n)
    return edges


def trajectories(run: SepsisRun, log: StageLog) -> None:
    """Actions (edges fit on train), rewards and episode ends, validated trajectories, on Spark."""
    config, h = run.config, run.h
    fluid_col, raw_col = c.fluid_column(h), c.fluid_raw_column(h)
    grid = run.spark_frames["grid"].withColumnRenamed("fluid_ml", fluid_col).withColumnRenamed(
        "fluid_raw_ml", raw_col)
    edges = _dose_edges(run, grid, fluid_col)
    run.info = trajectory_info(run, edges)
    n = config.actions.bins_per_dose
    schema, states_ = trajectory_schema_for(run.info), run.states
    columns = [c.EPISODE_ID, c.STEP, c.BIN_START, *states_, fluid_col, raw_col,
               c.NOREPI_EQ_MCG_KG_MIN, c.ACTION, c.REWARD, c.TERMINAL, c.TIMEOUT]
    masks = [col for col in grid.columns if col.startswith(MASK)]

    def trajectory_part(part: pd.DataFrame, cohort_part: pd.DataFrame) -> pd.DataFrame:
        part = part.sort_values(["stay_id", "bin"], kind="stable").reset_index(drop=True)
        out = add_rewards_and_ends(apply_actions(part, edges, fluid_col, n), cohort_part, config)
        out = out.merge(cohort_part[["stay_id", "episode_id"]], on="stay_id", how="left",
                        validate="many_to_one")
        out[c.STEP] = out["bin"].astype("int64")
        out[c.EPISODE_ID] = out[c.EPISODE_ID].astype("str")  # Spark hands strings to pandas as objects
        traj = validate_frame(finite_states(out, states_)[columns], schema, "sepsis trajectories")
        return traj.join(out[masks])

    people = _small(run, run.need("cohort"), ["stay_id", "episode_id", "end_reason", config.reward.outcome])
    out = _by_stay(run, trajectory_part, grid, people,
                   types={c.STEP: "bigint", c.ACTION: "bigint", **dict.fromkeys(masks, "tinyint")})
    run.spark_frames["trajectories"] = out
    rows = out.count()
    log.set(rows, rows)


def outputs(run: SepsisRun, log: StageLog) -> None:
    """trajectories, splits, cohort, imputed mask, the states quarantine (and concepts if kept)."""
    out_dir, cat, frame = run.out_dir, run.need("cat"), run.spark_frames["trajectories"]
    masks = [col for col in frame.columns if col.startswith(MASK)]
    ordered = frame.orderBy(c.EPISODE_ID, c.STEP)
    cat.write_frame(ordered.drop(*masks), out_dir / "trajectories.parquet")
    write_table_atomic(run.need("splits").sort_values(c.EPISODE_ID).reset_index(drop=True),
                       out_dir / "splits.parquet")
    write_table_atomic(cohort_table(run.need("cohort"), not run.config.output.pseudonymize_ids),
                       out_dir / "cohort.parquet")
    mask = ordered.select(c.EPISODE_ID, c.STEP, *[ordered[m].alias(m[len(MASK):]) for m in masks])
    cat.write_frame(mask, out_dir / "imputed_mask.parquet")
    run.need("excl").quarantined.createOrReplaceTempView("q_states")
    write_quarantine(cat, "q_states", out_dir / "quarantine" / "states.parquet", run.ids)
    if run.config.output.keep_concepts:
        for name in cat.build():
            cat.write_parquet(name, out_dir / "concepts" / f"{name}.parquet")
    n = frame.count()
    log.set(n, n, note="written: trajectories, splits, cohort, imputed_mask, quarantine")


SPARK_STAGE_RUNS = {**STAGE_RUNS, "doses": doses, "binning": binning, "states": states,
                    "trajectories": trajectories, "outputs": outputs}
"""The stage functions of the Spark engine, by declared stage name (`stages.SEPSIS_STAGES`)."""

__all__ = ["SPARK_STAGE_RUNS", "binning", "doses", "outputs", "states", "trajectories"]
