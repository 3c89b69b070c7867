"""The `stay_linkage` stage: every measurement and dose event in two long tables, and the events
that belong to no ICU stay, or fall more than 24 h outside their stay's admission, quarantined,
with the raw rows `event_flags.sql` set aside (charted in error, rewritten, a flag outside its
documented values), so that those are counted rather than silently dropped.

SQL: `pipelines/sql/sepsis/all_events.sql`, `all_doses.sql`, `q_stay_linkage.sql`. All row-level
work (millions of chart rows) stays in SQL.
"""

from __future__ import annotations

from ..sources.duckdb_catalog import MimicCatalog
from ..sources.spark_catalog import SparkCatalog
from .stage_sql import StageCounts, count_by_rule, count_rows, run_sql_file

TABLES = ("all_events", "all_doses", "q_stay_linkage")


def link_events_to_stays(cat: MimicCatalog | SparkCatalog) -> StageCounts:
    """Union the measurement and dose concepts; events of an unknown stay, or charted more than 24 h
    outside their stay's hospital admission (which would otherwise vanish from every count), go to
    quarantine."""
    for table in TABLES:
        run_sql_file(cat, table)
    rows_in = count_rows(cat, "all_events", "all_doses", "event_flags")
    by_rule = count_by_rule(cat, "q_stay_linkage")
    return StageCounts(rows_in, rows_in - sum(by_rule.values()), by_rule)
