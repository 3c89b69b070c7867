"""The `doses` stage: dose rows -> per-bin IV fluid volume and norepinephrine-equivalent rate.

SQL: `pipelines/sql/sepsis/window_doses.sql`, `classified_doses.sql`, `q_doses.sql`,
`kept_doses.sql`, `dose_bins.sql`, `fluid_in_windows.sql`. Infusions spanning several bins are split
by time overlap, so the volume given inside the window is conserved across binning; vasopressor
rates become a time-weighted mean over each bin. The fluid action is tonicity-adjusted by default
(AI Clinician, Komorowski 2018: free water counts 0, half-normal saline 0.5, factors in
rules/fluid_items.csv); the raw volume is binned alongside as `fluid_raw_ml`.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from ..sources.duckdb_catalog import MimicCatalog
from ..sources.spark_catalog import SparkCatalog
from .stage_sql import StageCounts, count_by_rule, count_rows, run_sql_file

TABLES = ("window_doses", "classified_doses", "q_doses", "kept_doses", "dose_bins", "fluid_in_windows")


def quarantine_doses(cat: MimicCatalog | SparkCatalog, tonicity_adjusted: bool) -> StageCounts:
    """Select dose rows overlapping each window; quarantine unknown units and absurd or negative doses.

    `quantity` is the fluid volume the action counts (tonicity-adjusted or raw mL) or the vasopressor
    rate; `quantity_raw` keeps the raw fluid volume in mL whichever is chosen.
    """
    for table in ("window_doses", "classified_doses", "q_doses", "kept_doses"):
        run_sql_file(cat, table, {"tonicity_adjusted": bool(tonicity_adjusted)})
    return StageCounts(
        count_rows(cat, "window_doses"),
        count_rows(cat, "kept_doses"),
        count_by_rule(cat, "q_doses"),
        note="rows in = linked dose rows of cohort stays overlapping their windows",
    )


def bin_doses(con: duckdb.DuckDBPyConnection, bin_hours: int) -> pd.DataFrame:
    """Per stay x bin: fluid volume (mL, split by overlap), raw fluid volume and time-weighted NE rate.

    Reads `kept_doses` (kind 'fluid'/'vaso', stay_id, starttime, endtime, quantity, quantity_raw)
    and `cohort_windows` (stay_id, window_start, window_end, n_bins); makes `dose_bins`.
    """
    run_sql_file(con, "dose_bins", {"bin_seconds": bin_hours * 3600})
    return con.execute("SELECT * FROM dose_bins ORDER BY stay_id, bin").df()


def fluid_in_windows(cat: MimicCatalog | SparkCatalog) -> float:
    """Kept fluid volume inside the windows, computed without bins (checks conservation)."""
    run_sql_file(cat, "fluid_in_windows")
    return round(float(cat.rows("SELECT fluid_ml FROM fluid_in_windows")[0][0]), 3)
