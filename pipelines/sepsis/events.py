"""Measurement events -> per-bin values, inside DuckDB: stay linkage, outlier quarantine, binning.

All row-level work (millions of chart rows) stays in SQL; only the stay x bin x variable
aggregates come back to pandas.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..sources.duckdb_catalog import MimicCatalog

#: Variables that are summed per bin (volumes) or maxed (indicators); all others are averaged.
SUMMED = ("urine_output_ml",)
MAXED = ("mechvent",)
GCS_PARTS = ("gcs_eye", "gcs_verbal", "gcs_motor", "gcs_total")


@dataclass(frozen=True)
class StageCounts:
    """Rows in, kept and quarantined (by rule) for one SQL stage."""

    rows_in: int
    rows_out: int
    quarantined_by_rule: dict[str, int]
    note: str = ""

    @property
    def rows_quarantined(self) -> int:
        """Rows removed by quarantine rules (clipped rows are kept and not counted here)."""
        return sum(v for k, v in self.quarantined_by_rule.items() if not k.endswith("_clipped"))


def _count(cat: MimicCatalog, sql: str) -> int:
    return int(cat.con.execute(sql).fetchall()[0][0])


def _by_rule(cat: MimicCatalog, table: str) -> dict[str, int]:
    rows = cat.con.execute(f"SELECT rule, count(*) FROM {table} GROUP BY rule ORDER BY rule").fetchall()
    return {str(r): int(n) for r, n in rows}


def link_events_to_stays(cat: MimicCatalog) -> StageCounts:
    """Union the measurement and dose concepts; events of an unknown stay, or charted more than 24 h
    outside their stay's hospital admission (which would otherwise vanish from every count), go to
    quarantine."""
    gcs_parts = ", ".join(f"'{v}'" for v in GCS_PARTS)
    cat.execute(
        f"""
        CREATE OR REPLACE VIEW all_events AS
        SELECT 'chart' AS src, stay_id, charttime, itemid, variable, valuenum FROM chart_measurements
            WHERE variable NOT IN ({gcs_parts})
        UNION ALL SELECT 'gcs', stay_id, charttime, NULL, 'gcs_total', gcs_total FROM gcs
        UNION ALL SELECT 'lab', stay_id, charttime, itemid, variable, valuenum FROM lab_measurements
        UNION ALL SELECT 'urine', stay_id, charttime, itemid, 'urine_output_ml', urine_output_ml FROM
            urine_output
    """,
        what="measurement events",
    )
    cat.execute(
        """
        CREATE OR REPLACE TABLE all_doses AS
        SELECT 'fluid' AS kind, stay_id, starttime, endtime, itemid, amountuom AS unit,
            amount_unit_known AS unit_known,
               amount_ml, amount_tonicity_ml, CAST(NULL AS DOUBLE) AS norepi_eq_mcg_kg_min, NULL AS
                   weight_source
        FROM fluid_input
        UNION ALL
        SELECT 'vaso', stay_id, starttime, endtime, itemid, rateuom, rate_unit_known, NULL, NULL,
               norepi_eq_mcg_kg_min, weight_source
        FROM norepinephrine_equivalent_dose
    """,
        what="dose events",
    )
    cat.execute(
        """
        CREATE OR REPLACE TABLE q_stay_linkage AS
        SELECT e.stay_id, 'stay_linkage' AS stage, 'event_outside_stay' AS rule, 'stay_id' AS "column",
               CASE WHEN e.stay_id IS NULL THEN 'missing' ELSE 'not in icustays' END AS failure_case,
               'src=' || e.src || '|charttime=' || coalesce(CAST(e.charttime AS VARCHAR), 'NULL')
                   || '|itemid=' || coalesce(CAST(e.itemid AS VARCHAR), '') AS row_key,
               'stay_id is missing or not in the ICU stays table' AS reason
        FROM all_events e ANTI JOIN icustay_detail s USING (stay_id)
        UNION ALL
        SELECT d.stay_id, 'stay_linkage', 'event_outside_stay', 'stay_id',
               CASE WHEN d.stay_id IS NULL THEN 'missing' ELSE 'not in icustays' END,
               'src=' || d.kind || '|starttime='
                   || coalesce(CAST(d.starttime AS VARCHAR), 'NULL')
                   || '|itemid=' || CAST(d.itemid AS VARCHAR),
               'stay_id is missing or not in the ICU stays table'
        FROM all_doses d ANTI JOIN icustay_detail s USING (stay_id)
        UNION ALL
        SELECT e.stay_id, 'stay_linkage', 'event_outside_admission', 'charttime',
               CAST(e.charttime AS VARCHAR),
               'src=' || e.src || '|charttime=' || CAST(e.charttime AS VARCHAR)
                   || '|itemid=' || coalesce(CAST(e.itemid AS VARCHAR), ''),
               'charted more than 24 h outside the hospital admission of its stay (wrong year or stay?)'
        FROM all_events e JOIN icustay_detail s USING (stay_id)
        WHERE e.charttime < s.admittime - INTERVAL 24 HOUR OR e.charttime > s.dischtime + INTERVAL 24 HOUR
    """,
        what="stay linkage",
    )
    rows_in = _count(cat, "SELECT (SELECT count(*) FROM all_events) + (SELECT count(*) FROM all_doses)")
    by_rule = _by_rule(cat, "q_stay_linkage")
    return StageCounts(rows_in, rows_in - sum(by_rule.values()), by_rule)


def quarantine_measurements(cat: MimicCatalog, bin_hours: int, clip: bool) -> StageCounts:
    """Select cohort events inside each window; quarantine missing, duplicate and out-of-bounds values.

    Exact duplicates are found by grouping (one kept, the other copies quarantined), which is much
    cheaper than a window function over millions of rows.
    """
    cat.execute(
        f"""
        CREATE OR REPLACE TABLE window_events AS
        WITH g AS (
            SELECT e.src, e.stay_id, e.charttime, e.itemid, e.variable, e.valuenum,
                   CAST(floor(date_diff('second', w.window_start, e.charttime) / {bin_hours * 3600})
                        AS BIGINT)
                       AS bin,
                   count(*) AS copies
            FROM all_events e JOIN cohort_windows w USING (stay_id)
            WHERE e.charttime >= w.window_start AND e.charttime < w.window_end
            GROUP BY ALL
        )
        SELECT g.*, b.lower, b.upper,
               CASE WHEN g.valuenum IS NULL THEN 'valuenum_missing'
                    WHEN g.valuenum < b.lower OR g.valuenum > b.upper THEN g.variable || '_range' END AS rule
        FROM g LEFT JOIN rule_outlier_bounds b ON b.variable = g.variable
        """,
        what="window events",
    )
    clipped = "(rule LIKE '%\\_range' ESCAPE '\\')" if clip else "false"
    cat.execute(
        f"""
        CREATE OR REPLACE TABLE kept_events AS
        SELECT stay_id, charttime, bin, variable,
               CASE WHEN {clipped} THEN least(greatest(valuenum, lower), upper) ELSE valuenum END AS valuenum
        FROM window_events WHERE rule IS NULL OR {clipped}
        """,
        what="kept events",
    )
    cat.execute(
        f"""
        CREATE OR REPLACE TABLE q_measurements AS
        WITH q AS (
            SELECT *, CASE WHEN {clipped} THEN replace(rule, '_range', '_clipped') ELSE rule END AS qrule,
                   CASE WHEN {clipped} THEN 1 ELSE copies END AS n
            FROM window_events WHERE rule IS NOT NULL
            UNION ALL
            SELECT *, 'duplicate_event' AS qrule, copies - 1 AS n
            FROM window_events WHERE (rule IS NULL OR {clipped}) AND copies > 1
        ),
        expanded AS (SELECT *, unnest(range(n)) AS copy_no FROM q)
        SELECT stay_id, 'measurements' AS stage, qrule AS rule, variable AS "column",
               CAST(valuenum AS VARCHAR) AS failure_case,
               'src=' || src || '|charttime=' || CAST(charttime AS VARCHAR)
                   || '|itemid=' || coalesce(CAST(itemid AS VARCHAR), '') AS row_key,
               CASE WHEN qrule = 'valuenum_missing' THEN 'no numeric value for ' || variable
                    WHEN qrule = 'duplicate_event' THEN 'exact duplicate of an earlier row (first copy kept)'
                    WHEN qrule LIKE '%\\_clipped' ESCAPE '\\'
                        THEN 'outside [' || lower || ', ' || upper || ']; clipped and kept'
                    ELSE 'outside [' || lower || ', ' || upper || '] (rules/outlier_bounds.csv)' END AS reason
        FROM expanded
        """,
        what="measurement quarantine",
    )
    rows_in = _count(cat, "SELECT coalesce(sum(copies), 0) FROM window_events")
    by_rule = _by_rule(cat, "q_measurements")
    return StageCounts(
        rows_in,
        _count(cat, "SELECT count(*) FROM kept_events"),
        by_rule,
        note="rows in = linked events of cohort stays inside their windows",
    )


def bin_measurements(cat: MimicCatalog, variables: list[str]) -> pd.DataFrame:
    """Per stay x bin, one column per variable: mean (sum for volumes, max for indicators).

    Aggregated per stay x bin x variable first (one pass, exact decimal sums, so reruns give identical
    values in any thread order), then pivoted inside DuckDB on the much smaller aggregate. Means, sums
    and maxima are separate aggregates: with avg and sum in one GROUP BY, DuckDB rewrites avg as
    sum / count, which differs in the last bit.
    """
    summed = ", ".join(f"'{v}'" for v in SUMMED)
    maxed = ", ".join(f"'{v}'" for v in MAXED)
    value = "CAST(valuenum AS DECIMAL(18, 6))"
    columns = ", ".join(f"max(value) FILTER (WHERE variable = '{v}') AS \"{v}\"" for v in variables)
    per_variable = " UNION ALL ".join(
        f"SELECT stay_id, bin, CAST(variable AS VARCHAR) AS variable, {agg} AS value FROM kept_events "
        f"WHERE {where} GROUP BY stay_id, bin, variable"
        for agg, where in (
            (f"CAST(sum({value}) AS DOUBLE)", f"variable IN ({summed})"),
            ("max(valuenum)", f"variable IN ({maxed})"),
            (f"CAST(avg({value}) AS DOUBLE)", f"variable NOT IN ({summed}, {maxed})"),
        )
    )
    return cat.df(
        f"WITH per_variable AS ({per_variable}) "
        f"SELECT stay_id, bin, {columns} FROM per_variable GROUP BY stay_id, bin ORDER BY stay_id, bin",
        what="binned measurements",
    )
