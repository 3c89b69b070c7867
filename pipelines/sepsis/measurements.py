"""The `measurements` stage: cohort events inside each window; missing, duplicate and out-of-bounds
values quarantined (or clipped and kept, with `outliers.clip`).

SQL: `pipelines/sql/sepsis/window_events.sql`, `kept_events.sql`, `q_measurements.sql`. Exact
duplicates are found by grouping (one kept, the other copies quarantined), which is much cheaper
than a window function over millions of rows.
"""

from __future__ import annotations

from ..sources.duckdb_catalog import MimicCatalog
from ..sources.spark_catalog import SparkCatalog
from .stage_sql import StageCounts, count_by_rule, count_rows, run_sql_file

TABLES = ("window_events", "kept_events", "q_measurements")


def quarantine_measurements(cat: MimicCatalog | SparkCatalog, bin_hours: int, clip: bool) -> StageCounts:
    """Select cohort events inside each window; quarantine missing, duplicate and out-of-bounds values."""
    settings = {"bin_seconds": bin_hours * 3600, "clip": bool(clip)}
    for table in TABLES:
        run_sql_file(cat, table, settings)
    rows_in = int(cat.rows("SELECT coalesce(sum(copies), 0) FROM window_events")[0][0])
    return StageCounts(
        rows_in,
        count_rows(cat, "kept_events"),
        count_by_rule(cat, "q_measurements"),
        note="rows in = linked events of cohort stays inside their windows",
    )
