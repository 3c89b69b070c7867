"""`run_sepsis_pipeline`: raw MIMIC-III/IV -> Sepsis-3 trajectories, cohort, splits, quarantine, manifest.

Heavy row-level work runs in DuckDB (sources, concepts, linkage, outliers, binning); pandas only
touches the stay x bin grid. The manifest is written last, so its presence means the folder is whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from dosewise.data_schemas import (
    BadInputError,
    RunManifest,
    TrajectoryDatasetInfo,
    counts_by_rule,
    sha256_file,
    staged_output,
    trajectory_schema_for,
    validate_frame,
    write_table_atomic,
)
from dosewise.data_schemas import columns as c
from dosewise.data_schemas.out_paths import check_out_dir

from ..binning import BINNING_RULE
from ..outputs import write_quarantine
from ..privacy import RunIds, resolve_salt, salt_change_warnings
from ..runner import StageRunner
from ..sources.check import require_care_system_inputs
from ..sources.duckdb_catalog import MimicCatalog, rules_sha256
from ..sources.mimic_layout import detect_layout, detect_version, require_tables
from ..sources.unique_keys import check_unique_keys
from .binning import bin_measurements, sofa_bins
from .cohort import select_sepsis3_cohort
from .config import SepsisPipelineConfig
from .doses import bin_doses, fluid_in_windows, quarantine_doses
from .measurements import quarantine_measurements
from .outputs import cohort_table, write_concepts
from .stages import STAGE_NAMES
from .states import add_derived, impute_states, imputed_fraction, make_grid, pivot_measurements, state_columns
from .stay_linkage import link_events_to_stays
from .summaries import care_systems, weight_fallback
from .trajectories import (
    add_actions,
    add_rewards_and_ends,
    episode_ids_and_splits,
    finite_states,
    post_binning_exclusions,
    reward_description,
)

STAGES = STAGE_NAMES  # the declared stages, in order: stages.SEPSIS_STAGES
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
)


def redacted_config(config: SepsisPipelineConfig) -> dict[str, Any]:
    """The resolved config for the manifest, with the pseudonym salt removed."""
    data = config.model_dump(mode="json")
    if data["output"]["id_salt"]:
        data["output"]["id_salt"] = "<redacted>"
    return data


def _catalog_params(config: SepsisPipelineConfig) -> dict[str, Any]:
    return {
        "cv_rate_hold_hours": config.doses.cv_rate_hold_hours,
        "gcs_under_sedation": config.scoring.gcs_under_sedation,
        "weight_fallback": config.weight.fallback,
        "weight_fallback_kg": config.weight.fallback_kg,
        "sofa_scope": "filtered"
        if config.inclusion.require_sepsis3 and not config.output.keep_concepts
        else "all",
    }


def _stays_frame(cat: MimicCatalog) -> tuple[pd.DataFrame, pd.DataFrame]:
    stays = cat.df(
        "SELECT d.*, w.weight_source FROM icustay_detail d LEFT JOIN weight w USING (stay_id) "
        "ORDER BY stay_id",
        what="ICU stays",
    )
    sepsis = cat.df("SELECT * FROM sepsis3 ORDER BY stay_id", what="Sepsis-3 onset")
    return stays, sepsis


def run_sepsis_pipeline(
    config: SepsisPipelineConfig, source_dir: Path | str, out_dir: Path | str, show_progress: bool = True
) -> RunManifest:
    """Run the sepsis ETL on a MIMIC-III or MIMIC-IV folder and write a complete trajectories folder.

    The run is staged and swapped in whole, so a failed rerun leaves the last complete one intact.
    """
    salt = (
        resolve_salt(config.output.id_salt, config.output.id_salt_env)
        if config.output.pseudonymize_ids
        else ""
    )
    ids = RunIds(salt)
    warnings = salt_change_warnings(Path(out_dir), ids)
    detect_version(Path(source_dir))  # a wrong --source is named before any --out rule
    check_out_dir(Path(out_dir), {"--source": Path(source_dir)})
    with staged_output(out_dir) as work:
        manifest = _run_into(config, Path(source_dir), work, show_progress, ids, warnings)
    return manifest


def _run_into(
    config: SepsisPipelineConfig,
    source_dir: Path,
    out_dir: Path,
    show_progress: bool,
    ids: RunIds,
    warnings: list[str],
) -> RunManifest:
    h = config.binning.bin_hours
    runner = StageRunner(STAGES, show_progress)
    manifest = RunManifest.start("sepsis_trajectories", redacted_config(config), seed=config.seed)
    extra: dict[str, Any] = {}
    try:
        with runner.stage("sources") as log:
            layout = detect_layout(source_dir)
            if config.source_version != "auto" and config.source_version != layout.version:
                raise BadInputError(
                    f"{source_dir} holds {layout.label}, but the config says "
                    f"source_version = {config.source_version}.",
                    "Use the matching config (sepsis_mimic3 / sepsis_mimic4) or source_version=auto.",
                )
            require_tables(layout)
            require_care_system_inputs(layout)
            cat = MimicCatalog(
                layout, _catalog_params(config), threads=config.threads, memory_limit=config.memory_limit
            )
            check_unique_keys(cat.con, layout.version, layout.files)
            manifest.inputs = {
                str(p.relative_to(source_dir)): sha256_file(p) for p in sorted(layout.files.values())
            }
            manifest.inputs.update(rules_sha256())
            n_tables = len(layout.files)
            log.set(n_tables, n_tables, note=f"{layout.label}: raw tables registered as typed DuckDB views")
        with runner.stage("concepts") as log:
            if _catalog_params(config)["sofa_scope"] == "filtered":  # only suspected infection -> Sepsis-3
                cat.build(["suspicion_of_infection"])
                cat.execute(
                    "INSERT INTO sofa_stay_filter SELECT DISTINCT stay_id FROM suspicion_of_infection",
                    what="SOFA scope",
                )
            built = cat.build(PIPELINE_CONCEPTS)
            stays, sepsis = _stays_frame(cat)
            log.set(
                len(stays), len(stays), note=f"grain: {len(built)} concept tables built; rows = ICU stays"
            )
        with runner.stage("cohort") as log:
            result = select_sepsis3_cohort(stays, sepsis, config.inclusion, h)
            cohort = result.cohort
            if cohort.empty:
                raise BadInputError(
                    "No ICU stay passed the cohort rules: "
                    + ", ".join(f"{s.rule}={s.remaining}" for s in result.funnel)
                    + ".",
                    "Check the source data, or relax the rules with --set inclusion.<rule>=...",
                )
            write_quarantine(cat.con, result.excluded, out_dir / "quarantine" / "cohort.parquet", ids)
            cat.con.register("_windows", cohort[["stay_id", "window_start", "window_end", "n_bins"]])
            cat.execute(
                "CREATE OR REPLACE TABLE cohort_windows AS SELECT * FROM _windows", what="cohort windows"
            )
            log.set(len(stays), len(cohort), counts_by_rule(result.excluded))
        with runner.stage("stay_linkage") as log:
            counts = link_events_to_stays(cat)
            write_quarantine(cat.con, "q_stay_linkage", out_dir / "quarantine" / "stay_linkage.parquet", ids)
            log.set(counts.rows_in, counts.rows_out, counts.quarantined_by_rule)
        with runner.stage("measurements") as log:
            counts = quarantine_measurements(cat, h, config.outliers.clip)
            write_quarantine(cat.con, "q_measurements", out_dir / "quarantine" / "measurements.parquet", ids)
            log.set(
                counts.rows_in,
                counts.rows_out,
                counts.quarantined_by_rule,
                counts.note,
                counts.rows_quarantined,
            )
        with runner.stage("doses") as log:
            counts = quarantine_doses(cat, config.doses.tonicity_adjusted)
            write_quarantine(cat.con, "q_doses", out_dir / "quarantine" / "doses.parquet", ids)
            dose_bins = bin_doses(cat.con, h)
            extra["fluid_ml_in_window_kept"] = fluid_in_windows(cat)
            log.set(counts.rows_in, counts.rows_out, counts.quarantined_by_rule, counts.note)
        with runner.stage("binning") as log:
            hold = cat.rules["hold_hours"]
            variables = [*hold["variable"], "urine_output_ml"]
            binned = bin_measurements(cat, variables)
            grid = pivot_measurements(make_grid(cohort, h), binned, variables)
            grid = grid.merge(dose_bins, on=["stay_id", "bin"], how="left").merge(
                sofa_bins(cat, h), on=["stay_id", "bin"], how="left"
            )
            dose_cols = ["fluid_ml", "fluid_raw_ml", c.NOREPI_EQ_MCG_KG_MIN]
            grid[dose_cols] = grid[dose_cols].fillna(0.0)
            extra["fluid_ml_binned"] = round(float(grid["fluid_ml"].sum()), 3)
            excl = post_binning_exclusions(grid, cohort, config, len(cohort))
            n_kept = int(cat.con.execute("SELECT count(*) FROM kept_events").fetchall()[0][0])
            log.set(
                n_kept,
                int(binned[variables].notna().to_numpy().sum()),
                note="grain: kept events -> stay x bin x variable aggregates; "
                f"grid = {len(grid)} stay x bin rows",
            )
        with runner.stage("states") as log:
            cohort = cohort[cohort["stay_id"].isin(excl.keep_stays)].reset_index(drop=True)
            grid_in = len(grid)
            grid = grid[grid["stay_id"].isin(excl.keep_stays)].reset_index(drop=True)
            cohort["episode_id"], splits = episode_ids_and_splits(cohort, config, ids.salt)
            train_stays = set(cohort.loc[splits[c.SPLIT].to_numpy() == "train", "stay_id"])
            grid, mask, fills = impute_states(grid, hold, h, config.imputation.fill, train_stays)
            grid = add_derived(grid, cohort, h)
            states = state_columns(hold, h)
            extra.update(fill_values=fills, filled_fraction=imputed_fraction(mask))
            log.set(
                grid_in, len(grid), counts_by_rule(excl.quarantined), rows_quarantined=len(excl.quarantined)
            )
        with runner.stage("trajectories") as log:
            fluid_col = c.fluid_column(h)
            grid = grid.rename(columns={"fluid_ml": fluid_col, "fluid_raw_ml": c.fluid_raw_column(h)})
            train_rows = grid["stay_id"].isin(train_stays)
            grid, edges = add_actions(grid, train_rows, fluid_col, config.actions.bins_per_dose)
            grid = add_rewards_and_ends(grid, cohort, config)
            grid = grid.merge(
                cohort[["stay_id", "episode_id"]], on="stay_id", how="left", validate="many_to_one"
            )
            grid[c.STEP] = grid["bin"].astype("int64")
            traj = finite_states(grid, states)[
                [
                    c.EPISODE_ID,
                    c.STEP,
                    c.BIN_START,
                    *states,
                    fluid_col,
                    c.fluid_raw_column(h),
                    c.NOREPI_EQ_MCG_KG_MIN,
                    c.ACTION,
                    c.REWARD,
                    c.TERMINAL,
                    c.TIMEOUT,
                ]
            ]
            traj = traj.sort_values([c.EPISODE_ID, c.STEP], kind="stable").reset_index(drop=True)
            n = config.actions.bins_per_dose
            info = TrajectoryDatasetInfo(
                state_columns=states,
                n_actions=n * n,
                continuous_action_columns=[fluid_col, c.NOREPI_EQ_MCG_KG_MIN],
                action_bin_edges=edges,
                action_grid=[n, n],
                bin_hours=h,
                ids_pseudonymised=config.output.pseudonymize_ids,
                reward_description=reward_description(config),
            )
            traj = validate_frame(traj, trajectory_schema_for(info), "sepsis trajectories")
            log.set(len(grid), len(traj))
        with runner.stage("outputs") as log:
            write_table_atomic(traj, out_dir / "trajectories.parquet")
            write_table_atomic(
                splits.sort_values(c.EPISODE_ID).reset_index(drop=True), out_dir / "splits.parquet"
            )
            write_table_atomic(
                cohort_table(cohort, not config.output.pseudonymize_ids), out_dir / "cohort.parquet"
            )
            mask.insert(0, c.STEP, grid["bin"].to_numpy())
            mask.insert(0, c.EPISODE_ID, grid["episode_id"].to_numpy())
            write_table_atomic(
                mask.sort_values([c.EPISODE_ID, c.STEP]).reset_index(drop=True),
                out_dir / "imputed_mask.parquet",
            )
            write_quarantine(cat.con, excl.quarantined, out_dir / "quarantine" / "states.parquet", ids)
            if config.output.keep_concepts:
                built = cat.build()
                write_concepts(cat.con, built, out_dir / "concepts")
            log.set(
                len(traj), len(traj), note="written: trajectories, splits, cohort, imputed_mask, quarantine"
            )
        manifest.funnel = [*result.funnel, *excl.funnel]
        manifest.dataset = info
        manifest.extra = {
            **extra,
            "source_version": layout.version,
            "care_systems": care_systems(stays, cohort),
            "weight_sources": cohort["weight_source"].value_counts().to_dict(),
            "weight_fallback": weight_fallback(cat, cohort),
            "action_binning_rule": BINNING_RULE,
            "fluid_action": (
                f"{fluid_col}: tonicity-adjusted mL (AI Clinician; rules/fluid_items.csv); "
                f"{c.fluid_raw_column(h)}: raw mL"
                if config.doses.tonicity_adjusted
                else f"{fluid_col} and {c.fluid_raw_column(h)}: raw mL (doses.tonicity_adjusted = false)"
            ),
            "n_episodes": len(cohort),
            "imputed_mask": "imputed_mask.parquet: 0 measured, 1 held, 2 filled",
            "id_salt_fingerprint": ids.fingerprint,
            "warnings": warnings,
        }
        cat.close()
    finally:
        runner.close()
    manifest.stages = runner.records
    manifest.record_outputs(out_dir)
    manifest.write(out_dir)
    return manifest
