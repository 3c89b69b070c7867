"""The cycle-level chemotherapy ETL (flat registry or OMOP CDM) as an ordered list of declared
stages: read this list to find where any table, frame or output column is made.

Each stage is named after the module that implements it, declares what it reads and what it makes
(DuckDB tables, pandas frames, output files) and lists its SQL files (`pipelines/sql/chemo/`, one
table each, run in this order; the tables whose SQL depends on the concept map or on the drugs
found, `dx`, `cyc`, `meas` and `_rows`, are built in `omop_sql.py` / `omop_cycles.py`).
Stages after `sources` run per patient batch (`stage_runs.py`); every stage writes its row and
quarantine counts to the manifest (`RunManifest.stages`). Trial records (one row per patient) run
`trial_pipeline.py` instead. With `engine = "spark"` the same stages run on Spark
(`spark_stages.py`): the tables are Spark temporary views, the SQL is transpiled, and there are no
batches: cycles, units and states run as grouped pandas UDFs over groups of whole patients.
"""

from __future__ import annotations

from ..sepsis.stages import Stage

SQL_FOLDER = "chemo"  # pipelines/sql/chemo/<table>.sql

CHEMO_STAGES: tuple[Stage, ...] = (
    Stage("sources", "chemo.sources",
          ("registry export or OMOP CDM files", "truth/behaviour.parquet (simulator)",
           "rules/omop_concepts.csv", "rules/chemo_units.csv", "rules/chemo_regimens.csv", "config"),
          ("person", "drug_exposure", "measurement", "observation", "death", "episode", "episode_event",
           "dx", "cyc", "mapped_measurements", "meas", "cycle_schedule", "placed_measurements",
           "graded_cycles", "outcome_dates",
           "_bucket", "_rows", "rows frame", "quarantine/sources.parquet"),
          sql=("mapped_measurements", "cycle_schedule", "placed_measurements", "graded_cycles",
               "outcome_dates"),
          summary="detect the format; OMOP: tables checked row by row in DuckDB (omop.py), cycles from "
                  "episodes and drug exposures, measurements by the concept map (omop_sql.py), placed on "
                  "the cycles (SQL files), read in patient batches (omop_cycles.py); registry: the "
                  "mapping and schema (registry.py); rows failing the registry schema quarantined"),
    Stage("cycles", "chemo.cycles", ("rows frame", "rules/chemo_regimens.csv"),
          ("kept cycles frame", "bsa_source", "quarantine/cycles.parquet"),
          summary="duplicates, regimens, cycle numbering, dates, doses and BSA (Mosteller), each bad "
                  "cycle quarantined with the patient's later cycles (pure functions on frames)"),
    Stage("units", "chemo.units", ("kept cycles frame", "rules/chemo_units.csv"),
          ("converted frame", "quarantine/units.parquet"),
          summary="ANC, nadir and platelets to 1e9/L by the cited unit table"),
    Stage("states", "chemo.states", ("converted frame",),
          ("canonical cycles frame", "patients frame", "dose_fraction", "dose_mg_per_m2", "labs filled"),
          summary="canonical cycles and patients (canonical.py: dose fraction, principal drug's dose per "
                  "m2, covariates and outcome dates), labs held forward, then the median of all cycles"),
    Stage("trajectories", "chemo.trajectories",
          ("canonical cycles frame", "patients frame", "truth/behaviour.parquet (simulator)", "config"),
          ("state columns", "rdi_fraction", "dose_fraction", "delay_days", "action", "reward", "terminal",
           "timeout", "behaviour_prob", "behaviour_density", "trajectories frame"),
          summary="states (states.cycle_states), the RDI action and its bins, rewards and ends "
                  "(rewards.py), known behaviour probabilities; validated against the contract"),
    Stage("outputs", "outputs", ("trajectories frame", "patients frame", "quarantine frames"),
          ("trajectories.parquet", "splits.parquet", "cohort.parquet", "quarantine/*.parquet"),
          summary="trajectories appended batch by batch, the patient-level splits, the cohort and the "
                  "quarantine files; the manifest is written last (manifests.finish_manifest)"),
)
STAGE_NAMES = tuple(stage.name for stage in CHEMO_STAGES)
