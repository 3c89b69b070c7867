"""The sepsis ETL as an ordered list of declared stages: read this list to find where any table,
frame or output column is made.

Each stage is named after the module that implements it, declares what it reads and what it makes
(DuckDB tables, pandas frames, output files), and lists its SQL files (`pipelines/sql/sepsis/`, one
table each, run in this order). Tables a stage reads come from the raw views and rule tables
(`sources`), the concept tables (`concepts`) or an earlier stage. Every stage writes its row and
quarantine counts to the manifest (`RunManifest.stages`). `run_sepsis_pipeline` runs them in order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One declared stage of an ETL (sepsis: `SEPSIS_STAGES`; chemotherapy: `chemo.stages.CHEMO_STAGES`)."""

    name: str
    module: str  # dotted module under dosewise.pipelines; its last part is `name`
    reads: tuple[str, ...]
    makes: tuple[str, ...]
    sql: tuple[str, ...] = ()  # files pipelines/sql/<sepsis or chemo>/<table>.sql, in run order
    summary: str = ""


SEPSIS_STAGES: tuple[Stage, ...] = (
    Stage("sources", "sources", ("raw MIMIC-III/IV files", "rules/*.csv", "config"),
          ("raw table views", "rule_* tables", "etl_params"),
          summary="detect MIMIC-III/IV, check tables and unique keys, register typed views"),
    Stage("concepts", "concepts", ("raw table views", "rule_* tables", "etl_params"),
          ("icustay_detail", "weight", "gcs", "lab_measurements", "chart_measurements", "urine_output",
           "fluid_input", "norepinephrine_equivalent_dose", "sofa", "suspicion_of_infection", "sepsis3",
           "event_flags", "stays frame", "sepsis frame"),
          summary="mimic-code style concept SQL (pipelines/sql/common, mimic_iii, mimic_iv)"),
    Stage("cohort", "sepsis.cohort", ("stays frame", "sepsis frame"),
          ("cohort frame", "cohort_windows", "quarantine/cohort.parquet"),
          summary="Sepsis-3 cohort rules and each stay's window around onset (pure function on frames)"),
    Stage("stay_linkage", "sepsis.stay_linkage",
          ("chart_measurements", "gcs", "lab_measurements", "urine_output", "fluid_input",
           "norepinephrine_equivalent_dose", "icustay_detail", "event_flags"),
          ("all_events", "all_doses", "q_stay_linkage", "quarantine/stay_linkage.parquet"),
          sql=("all_events", "all_doses", "q_stay_linkage"),
          summary="events of no stay or outside their admission, and raw rows set aside by their flags "
                  "(charted in error, rewritten, undocumented values), quarantined"),
    Stage("measurements", "sepsis.measurements", ("all_events", "cohort_windows", "rule_outlier_bounds"),
          ("window_events", "kept_events", "q_measurements", "quarantine/measurements.parquet"),
          sql=("window_events", "kept_events", "q_measurements"),
          summary="events inside the windows; missing, duplicate, out-of-range values quarantined "
                  "or clipped"),
    Stage("doses", "sepsis.doses", ("all_doses", "cohort_windows", "icustay_detail", "rule_outlier_bounds"),
          ("window_doses", "classified_doses", "q_doses", "kept_doses", "dose_bins", "fluid_in_windows",
           "quarantine/doses.parquet"),
          sql=("window_doses", "classified_doses", "q_doses", "kept_doses", "dose_bins", "fluid_in_windows"),
          summary="dose rules; fluid_ml, fluid_raw_ml, norepi_eq_mcg_kg_min per bin by time overlap"),
    Stage("binning", "sepsis.binning", ("kept_events", "sofa", "cohort_windows", "dose_bins", "cohort frame"),
          ("binned_measurements", "sofa_bins", "grid frame"),
          sql=("binned_measurements", "sofa_bins"),
          summary="one value per stay x bin x variable (mean, sum, max), pivoted onto the stay x bin grid"),
    Stage("states", "sepsis.states", ("grid frame", "cohort frame"),
          ("state columns", "imputed mask", "splits frame", "quarantine/states.parquet rows"),
          summary="post-binning exclusions, episode ids and splits, sample-and-hold and fill, derived "
                  "states (shock index, P/F ratio, ...) (pure functions on frames)"),
    Stage("trajectories", "sepsis.trajectories", ("grid frame", "cohort frame"),
          ("action", "reward", "terminal", "timeout", "trajectories frame"),
          summary="action bins (fit on train), rewards and episode ends, validated trajectories"),
    Stage("outputs", "sepsis.outputs", ("trajectories frame", "splits frame", "cohort frame", "imputed mask"),
          ("trajectories.parquet", "splits.parquet", "cohort.parquet", "imputed_mask.parquet",
           "quarantine/states.parquet", "concepts/*.parquet"),
          summary="the output files; the manifest is written last"),
)
STAGE_NAMES = tuple(stage.name for stage in SEPSIS_STAGES)
