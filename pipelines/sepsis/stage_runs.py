"""One function per declared stage of the sepsis ETL (`stages.SEPSIS_STAGES`, same names), run in
that order by `run_sepsis_pipeline`: each takes the `SepsisRun` that the stages hand each other,
calls its module's SQL and pure frame functions, and records its row and quarantine counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dosewise.data_schemas import (
    BadInputError,
    RunManifest,
    TrajectoryDatasetInfo,
    counts_by_rule,
    sha256_file,
    trajectory_schema_for,
    validate_frame,
    write_table_atomic,
)
from dosewise.data_schemas import columns as c

from ..outputs import write_quarantine
from ..privacy import RunIds
from ..runner import StageLog
from ..sources.check import require_care_system_inputs
from ..sources.duckdb_catalog import MimicCatalog, rules_sha256
from ..sources.mimic_layout import SourceLayout, detect_layout, require_tables
from ..sources.spark_catalog import SparkCatalog
from ..sources.unique_keys import check_unique_keys
from .binning import bin_measurements, sofa_bins
from .cohort import CohortResult, select_sepsis3_cohort
from .config import SepsisPipelineConfig
from .doses import bin_doses, fluid_in_windows, quarantine_doses
from .measurements import quarantine_measurements
from .outputs import cohort_table, write_concepts
from .stage_sql import count_rows
from .states import add_derived, impute_states, imputed_fraction, make_grid, pivot_measurements, state_columns
from .stay_linkage import link_events_to_stays
from .trajectories import (
    Exclusions,
    add_actions,
    add_rewards_and_ends,
    episode_ids_and_splits,
    finite_states,
    post_binning_exclusions,
    reward_description,
)

PIPELINE_CONCEPTS = (
    "icustay_detail",
    "weight",
    "gcs",
    "lab_measurements",
    "urine_output",
    "fluid_input",
    "norepinephrine_equivalent_dose",
    "sofa",
    "sepsis3",
    "event_flags",
)


def catalog_params(config: SepsisPipelineConfig) -> dict[str, Any]:
    """The run settings the concept SQL reads from `etl_params`."""
    return {
        "cv_rate_hold_hours": config.doses.cv_rate_hold_hours,
        "gcs_under_sedation": config.scoring.gcs_under_sedation,
        "weight_fallback": config.weight.fallback,
        "weight_fallback_kg": config.weight.fallback_kg,
        "sofa_scope": "filtered"
        if config.inclusion.require_sepsis3 and not config.output.keep_concepts
        else "all",
    }


@dataclass
class SepsisRun:
    """What the stages hand each other: the catalog (DuckDB or Spark tables) and the frames made so far
    (pandas; on Spark the row-level ones are Spark DataFrames in `spark_frames`)."""

    config: SepsisPipelineConfig
    source_dir: Path
    out_dir: Path
    ids: RunIds
    manifest: RunManifest
    extra: dict[str, Any] = field(default_factory=dict)
    layout: SourceLayout | None = None
    cat: MimicCatalog | SparkCatalog | None = None
    stays: pd.DataFrame | None = None
    sepsis: pd.DataFrame | None = None
    result: CohortResult | None = None
    cohort: pd.DataFrame | None = None
    dose_bins: pd.DataFrame | None = None
    grid: pd.DataFrame | None = None
    excl: Exclusions | None = None
    splits: pd.DataFrame | None = None
    mask: pd.DataFrame | None = None
    states: list[str] = field(default_factory=list)
    train_stays: set[Any] = field(default_factory=set)
    traj: pd.DataFrame | None = None
    info: TrajectoryDatasetInfo | None = None
    spark_frames: dict[str, Any] = field(default_factory=dict)

    @property
    def h(self) -> int:
        """Bin width in hours."""
        return self.config.binning.bin_hours

    def need(self, name: str) -> Any:
        """A value an earlier stage made (the stage order guarantees it)."""
        value = getattr(self, name)
        if value is None:
            raise RuntimeError(f"sepsis stage order broken: `{name}` was not made before it is read")
        return value


def sources(run: SepsisRun, log: StageLog) -> None:
    """Detect MIMIC-III/IV, check tables and unique keys, register typed views and rule tables."""
    layout = detect_layout(run.source_dir)
    config = run.config
    if config.source_version != "auto" and config.source_version != layout.version:
        raise BadInputError(
            f"{run.source_dir} holds {layout.label}, but the config says source_version = "
            f"{config.source_version}.",
            "Use the matching config (sepsis_mimic3 / sepsis_mimic4) or source_version=auto.",
        )
    require_tables(layout)
    require_care_system_inputs(layout)
    cat: MimicCatalog | SparkCatalog
    if config.engine == "spark":
        cat = SparkCatalog(layout, catalog_params(config), config.spark)
    else:
        cat = MimicCatalog(layout, catalog_params(config), threads=config.threads,
                           memory_limit=config.memory_limit)
    run.layout, run.cat = layout, cat
    check_unique_keys(cat.con if isinstance(cat, MimicCatalog) else cat, layout.version, layout.files)
    run.manifest.inputs = {
        str(p.relative_to(run.source_dir)): sha256_file(p) for p in sorted(layout.files.values())
    }
    run.manifest.inputs.update(rules_sha256())
    n_tables = len(layout.files)
    kind = "DuckDB views" if config.engine == "duckdb" else "Spark DataFrames"
    log.set(n_tables, n_tables, note=f"{layout.label}: raw tables registered as typed {kind}")


def concepts(run: SepsisRun, log: StageLog) -> None:
    """The concept tables the pipeline needs; the stays and Sepsis-3 frames."""
    cat = run.need("cat")
    if catalog_params(run.config)["sofa_scope"] == "filtered":  # only suspected infection -> Sepsis-3
        cat.build(["suspicion_of_infection"])
        cat.execute("CREATE OR REPLACE TABLE sofa_stay_filter AS "
                    "SELECT DISTINCT CAST(stay_id AS BIGINT) AS stay_id FROM suspicion_of_infection",
                    what="SOFA scope")
    built = cat.build(PIPELINE_CONCEPTS)
    run.stays = cat.df("SELECT d.*, w.weight_source FROM icustay_detail d "
                       "LEFT JOIN weight w USING (stay_id) ORDER BY stay_id", what="ICU stays")
    run.sepsis = cat.df("SELECT * FROM sepsis3 ORDER BY stay_id", what="Sepsis-3 onset")
    n = len(run.stays)
    log.set(n, n, note=f"grain: {len(built)} concept tables built; rows = ICU stays")


def cohort(run: SepsisRun, log: StageLog) -> None:
    """Sepsis-3 cohort rules and each stay's window (`cohort_windows`)."""
    cat, stays = run.need("cat"), run.need("stays")
    result = select_sepsis3_cohort(stays, run.need("sepsis"), run.config.inclusion, run.h)
    if result.cohort.empty:
        raise BadInputError(
            "No ICU stay passed the cohort rules: "
            + ", ".join(f"{s.rule}={s.remaining}" for s in result.funnel) + ".",
            "Check the source data, or relax the rules with --set inclusion.<rule>=...",
        )
    run.result, run.cohort = result, result.cohort
    write_quarantine(cat, result.excluded, run.out_dir / "quarantine" / "cohort.parquet", run.ids)
    cat.register("_windows", result.cohort[["stay_id", "window_start", "window_end", "n_bins"]])
    cat.execute("CREATE OR REPLACE TABLE cohort_windows AS SELECT * FROM _windows", what="cohort windows")
    log.set(len(stays), len(result.cohort), counts_by_rule(result.excluded))


def stay_linkage(run: SepsisRun, log: StageLog) -> None:
    """Events of no stay, or outside their stay's admission, quarantined."""
    cat = run.need("cat")
    counts = link_events_to_stays(cat)
    write_quarantine(cat, "q_stay_linkage", run.out_dir / "quarantine" / "stay_linkage.parquet",
                     run.ids)
    log.set(counts.rows_in, counts.rows_out, counts.quarantined_by_rule)


def measurements(run: SepsisRun, log: StageLog) -> None:
    """Events inside the windows; missing, duplicate and out-of-range values quarantined or clipped."""
    cat = run.need("cat")
    counts = quarantine_measurements(cat, run.h, run.config.outliers.clip)
    write_quarantine(cat, "q_measurements", run.out_dir / "quarantine" / "measurements.parquet",
                     run.ids)
    log.set(counts.rows_in, counts.rows_out, counts.quarantined_by_rule, counts.note,
            counts.rows_quarantined)


def doses(run: SepsisRun, log: StageLog) -> None:
    """Dose rules, then fluid and vasopressor doses per stay x bin."""
    cat = run.need("cat")
    counts = quarantine_doses(cat, run.config.doses.tonicity_adjusted)
    write_quarantine(cat, "q_doses", run.out_dir / "quarantine" / "doses.parquet", run.ids)
    run.dose_bins = bin_doses(cat.con, run.h)
    run.extra["fluid_ml_in_window_kept"] = fluid_in_windows(cat)
    log.set(counts.rows_in, counts.rows_out, counts.quarantined_by_rule, counts.note)


def binning(run: SepsisRun, log: StageLog) -> None:
    """The stay x bin grid: binned measurements, doses and SOFA; the post-binning exclusions."""
    cat, cohort_frame = run.need("cat"), run.need("cohort")
    variables = [*cat.rules["hold_hours"]["variable"], "urine_output_ml"]
    binned = bin_measurements(cat, variables)
    grid = pivot_measurements(make_grid(cohort_frame, run.h), binned, variables)
    grid = grid.merge(run.need("dose_bins"), on=["stay_id", "bin"], how="left").merge(
        sofa_bins(cat, run.h), on=["stay_id", "bin"], how="left")
    dose_cols = ["fluid_ml", "fluid_raw_ml", c.NOREPI_EQ_MCG_KG_MIN]
    grid[dose_cols] = grid[dose_cols].fillna(0.0)
    run.extra["fluid_ml_binned"] = round(float(grid["fluid_ml"].sum()), 3)
    run.excl = post_binning_exclusions(grid, cohort_frame, run.config, len(cohort_frame))
    run.grid = grid
    n_kept = count_rows(cat, "kept_events")
    log.set(n_kept, int(binned[variables].notna().to_numpy().sum()),
            note="grain: kept events -> stay x bin x variable aggregates; "
            f"grid = {len(grid)} stay x bin rows")


def states(run: SepsisRun, log: StageLog) -> None:
    """Post-binning exclusions applied, episode ids and splits, imputation, derived states."""
    excl, hold = run.need("excl"), run.need("cat").rules["hold_hours"]
    cohort_frame = run.need("cohort")
    cohort_frame = cohort_frame[cohort_frame["stay_id"].isin(excl.keep_stays)].reset_index(drop=True)
    grid = run.need("grid")
    grid_in = len(grid)
    grid = grid[grid["stay_id"].isin(excl.keep_stays)].reset_index(drop=True)
    cohort_frame["episode_id"], splits = episode_ids_and_splits(cohort_frame, run.config, run.ids.salt)
    run.train_stays = set(cohort_frame.loc[splits[c.SPLIT].to_numpy() == "train", "stay_id"])
    grid, mask, fills = impute_states(grid, hold, run.h, run.config.imputation.fill, run.train_stays)
    run.grid, run.mask = add_derived(grid, cohort_frame, run.h), mask
    run.cohort, run.splits = cohort_frame, splits
    run.states = state_columns(hold, run.h)
    run.extra.update(fill_values=fills, filled_fraction=imputed_fraction(mask))
    log.set(grid_in, len(run.grid), counts_by_rule(excl.quarantined),
            rows_quarantined=len(excl.quarantined))


def trajectory_info(run: SepsisRun, edges: Any) -> TrajectoryDatasetInfo:
    """The dataset description both engines write: states, the n x n dose grid and its edges."""
    config, n = run.config, run.config.actions.bins_per_dose
    return TrajectoryDatasetInfo(
        state_columns=run.states, n_actions=n * n,
        continuous_action_columns=[c.fluid_column(run.h), c.NOREPI_EQ_MCG_KG_MIN],
        action_bin_edges=edges, action_grid=[n, n], bin_hours=run.h,
        ids_pseudonymised=config.output.pseudonymize_ids, reward_description=reward_description(config),
    )


def trajectories(run: SepsisRun, log: StageLog) -> None:
    """Action bins (fit on train), rewards and episode ends; the validated trajectories frame."""
    config, h, cohort_frame = run.config, run.h, run.need("cohort")
    fluid_col = c.fluid_column(h)
    grid = run.need("grid").rename(columns={"fluid_ml": fluid_col, "fluid_raw_ml": c.fluid_raw_column(h)})
    grid, edges = add_actions(grid, grid["stay_id"].isin(run.train_stays), fluid_col,
                              config.actions.bins_per_dose)
    grid = add_rewards_and_ends(grid, cohort_frame, config)
    grid = grid.merge(cohort_frame[["stay_id", "episode_id"]], on="stay_id", how="left",
                      validate="many_to_one")
    grid[c.STEP] = grid["bin"].astype("int64")
    columns = [c.EPISODE_ID, c.STEP, c.BIN_START, *run.states, fluid_col, c.fluid_raw_column(h),
               c.NOREPI_EQ_MCG_KG_MIN, c.ACTION, c.REWARD, c.TERMINAL, c.TIMEOUT]
    traj = finite_states(grid, run.states)[columns]
    traj = traj.sort_values([c.EPISODE_ID, c.STEP], kind="stable").reset_index(drop=True)
    run.info = trajectory_info(run, edges)
    run.traj = validate_frame(traj, trajectory_schema_for(run.info), "sepsis trajectories")
    run.grid = grid
    log.set(len(grid), len(run.traj))


def outputs(run: SepsisRun, log: StageLog) -> None:
    """trajectories, splits, cohort, imputed mask, the states quarantine (and concepts if kept)."""
    out, traj, grid, mask = run.out_dir, run.need("traj"), run.need("grid"), run.need("mask")
    cat = run.need("cat")
    write_table_atomic(traj, out / "trajectories.parquet")
    write_table_atomic(run.need("splits").sort_values(c.EPISODE_ID).reset_index(drop=True),
                       out / "splits.parquet")
    write_table_atomic(cohort_table(run.need("cohort"), not run.config.output.pseudonymize_ids),
                       out / "cohort.parquet")
    mask.insert(0, c.STEP, grid["bin"].to_numpy())
    mask.insert(0, c.EPISODE_ID, grid["episode_id"].to_numpy())
    write_table_atomic(mask.sort_values([c.EPISODE_ID, c.STEP]).reset_index(drop=True),
                       out / "imputed_mask.parquet")
    write_quarantine(cat, run.need("excl").quarantined, out / "quarantine" / "states.parquet", run.ids)
    if run.config.output.keep_concepts:
        write_concepts(cat.con, cat.build(), out / "concepts")
    log.set(len(traj), len(traj), note="written: trajectories, splits, cohort, imputed_mask, quarantine")


STAGE_RUNS: dict[str, Callable[[SepsisRun, StageLog], None]] = {
    "sources": sources, "concepts": concepts, "cohort": cohort, "stay_linkage": stay_linkage,
    "measurements": measurements, "doses": doses, "binning": binning, "states": states,
    "trajectories": trajectories, "outputs": outputs,
}
