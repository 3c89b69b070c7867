"""Dose rows -> per-bin IV fluid volume and norepinephrine-equivalent rate, inside DuckDB.

Infusions spanning several bins are split by time overlap, so the volume given inside the window
is conserved across binning; vasopressor rates become a time-weighted mean over each bin. The fluid
action is tonicity-adjusted by default (AI Clinician, Komorowski 2018: free water counts 0, half-normal
saline 0.5, factors in rules/fluid_items.csv); the raw volume is binned alongside as `fluid_raw_ml`.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from ..sources.duckdb_catalog import MimicCatalog
from .events import StageCounts, _by_rule, _count


def quarantine_doses(cat: MimicCatalog, tonicity_adjusted: bool) -> StageCounts:
    """Select dose rows overlapping each window; quarantine unknown units and absurd or negative doses.

    `quantity` is the fluid volume the action counts (tonicity-adjusted or raw mL) or the vasopressor
    rate; `quantity_raw` keeps the raw fluid volume in mL whichever is chosen.
    """
    amount = "amount_tonicity_ml" if tonicity_adjusted else "amount_ml"
    cat.execute(
        f"""
        CREATE OR REPLACE TABLE window_doses AS
        SELECT d.kind, d.stay_id, d.starttime, d.endtime, d.itemid, d.unit, d.unit_known, d.weight_source,
               CASE WHEN d.kind = 'fluid' THEN d.{amount} ELSE d.norepi_eq_mcg_kg_min END AS quantity,
               CASE WHEN d.kind = 'fluid' THEN d.amount_ml END AS quantity_raw,
               b.upper, s.admittime, s.dischtime,
               row_number() OVER (PARTITION BY d.kind, d.stay_id, d.starttime, d.endtime, d.itemid,
                                  d.amount_ml, d.norepi_eq_mcg_kg_min) AS copy_no
        FROM all_doses d
        JOIN cohort_windows w USING (stay_id)
        JOIN icustay_detail s USING (stay_id)
        LEFT JOIN rule_outlier_bounds b
          ON b.variable = CASE WHEN d.kind = 'fluid' THEN 'fluid_ml' ELSE 'norepi_eq_mcg_kg_min' END
        WHERE (d.starttime < w.window_end AND d.endtime > w.window_start)
           OR (d.starttime = d.endtime AND d.starttime >= w.window_start AND d.starttime < w.window_end)
    """,
        what="window doses",
    )
    cat.execute(
        """
        CREATE OR REPLACE TABLE classified_doses AS
        SELECT *, CASE
            WHEN NOT coalesce(unit_known, false)
                THEN CASE WHEN kind = 'fluid' THEN 'amount_unit_unknown' ELSE 'rate_unit_unknown' END
            WHEN starttime IS NULL OR endtime IS NULL OR endtime < starttime THEN 'dose_times_invalid'
            WHEN starttime < admittime - INTERVAL 24 HOUR OR endtime > dischtime + INTERVAL 24 HOUR
                THEN 'dose_outside_admission'
            WHEN quantity IS NULL THEN 'dose_missing'
            WHEN quantity < 0 THEN 'dose_negative'
            WHEN copy_no > 1 THEN 'duplicate_dose'
            WHEN quantity > upper
                THEN CASE WHEN kind = 'fluid' THEN 'fluid_ml_range' ELSE 'norepi_eq_mcg_kg_min_range' END
        END AS rule
        FROM window_doses
    """,
        what="dose rules",
    )
    cat.execute(
        """
        CREATE OR REPLACE TABLE q_doses AS
        SELECT stay_id, 'doses' AS stage, rule,
               CASE WHEN rule LIKE '%unit%' THEN 'unit' WHEN rule = 'dose_outside_admission' THEN 'starttime'
                    WHEN kind = 'fluid' THEN 'fluid_ml' ELSE 'norepi_eq_mcg_kg_min' END AS "column",
               CASE WHEN rule LIKE '%unit%' THEN coalesce(unit, 'NULL')
                    WHEN rule = 'dose_outside_admission' THEN CAST(starttime AS VARCHAR) || ' to '
                        || CAST(endtime AS VARCHAR)
                    ELSE CAST(quantity AS VARCHAR) END AS failure_case,
               'src=' || kind || '|starttime=' || coalesce(CAST(starttime AS VARCHAR), 'NULL')
                   || '|itemid=' || CAST(itemid AS VARCHAR) AS row_key,
               CASE rule
                   WHEN 'amount_unit_unknown'
                       THEN 'amount unit ' || coalesce('`' || unit || '`', 'missing') || ' is not mL or L'
                   WHEN 'rate_unit_unknown' THEN 'rate unit ' || coalesce('`' || unit || '`', 'missing')
                       || ' is not in rules/rate_units.csv'
                   WHEN 'dose_times_invalid' THEN 'end time before start time, or a time is missing'
                   WHEN 'dose_outside_admission' THEN 'runs more than 24 h outside the hospital admission of '
                       || 'its stay (wrong year or stay?); spread over the window it would be a tiny dose'
                   WHEN 'dose_missing' THEN 'no dose value'
                   WHEN 'dose_negative' THEN 'negative dose'
                   WHEN 'duplicate_dose' THEN 'exact duplicate of an earlier row (first copy kept)'
                   ELSE 'above ' || upper || ' (rules/outlier_bounds.csv)' END AS reason
        FROM classified_doses WHERE rule IS NOT NULL
    """,
        what="dose quarantine",
    )
    cat.execute(
        "CREATE OR REPLACE TABLE kept_doses AS SELECT * FROM classified_doses WHERE rule IS NULL",
        what="kept doses",
    )
    by_rule = _by_rule(cat, "q_doses")
    return StageCounts(
        _count(cat, "SELECT count(*) FROM window_doses"),
        _count(cat, "SELECT count(*) FROM kept_doses"),
        by_rule,
        note="rows in = linked dose rows of cohort stays overlapping their windows",
    )


BIN_DOSES_SQL = """
WITH r AS (
    SELECT d.kind, d.stay_id, d.quantity, d.{raw} AS quantity_raw, w.n_bins,
           date_diff('millisecond', w.window_start, d.starttime) / 1000.0 AS ds,
           date_diff('millisecond', w.window_start, d.endtime) / 1000.0 AS de,
           date_diff('millisecond', w.window_start, w.window_end) / 1000.0 AS wl,
           {bin_seconds}::DOUBLE AS bs
    FROM {doses} d JOIN {windows} w USING (stay_id)
),
x AS (
    SELECT *, unnest(range(CAST(greatest(0, floor(ds / bs)) AS BIGINT),
                           CAST(least(n_bins - 1, floor(de / bs)) AS BIGINT) + 1)) AS bin
    FROM r
),
o AS (
    SELECT *, greatest(0.0, least(de, (bin + 1) * bs, wl) - greatest(ds, bin * bs)) AS overlap_s,
           least((bin + 1) * bs, wl) - bin * bs AS bin_len_s
    FROM x
)
SELECT stay_id, bin,
       CAST(coalesce(sum(CASE WHEN kind = 'fluid' THEN CAST(
                    CASE WHEN de = ds THEN quantity ELSE quantity * overlap_s / (de - ds) END
                    AS DECIMAL(18, 6)) END), 0) AS DOUBLE) AS fluid_ml,
       CAST(coalesce(sum(CASE WHEN kind = 'fluid' THEN CAST(
                    CASE WHEN de = ds THEN quantity_raw ELSE quantity_raw * overlap_s / (de - ds) END
                    AS DECIMAL(18, 6)) END), 0) AS DOUBLE) AS fluid_raw_ml,
       CAST(coalesce(sum(CASE WHEN kind = 'vaso' THEN CAST(quantity * overlap_s AS DECIMAL(18, 6)) END), 0)
            AS DOUBLE) / max(bin_len_s) AS norepi_eq_mcg_kg_min
FROM o
GROUP BY stay_id, bin
ORDER BY stay_id, bin
"""


def bin_doses(
    con: duckdb.DuckDBPyConnection,
    bin_hours: int,
    doses: str = "kept_doses",
    windows: str = "cohort_windows",
    raw: str = "quantity_raw",
) -> pd.DataFrame:
    """Per stay x bin: fluid volume (mL, split by overlap), raw fluid volume and time-weighted NE rate.

    `doses` needs kind ('fluid'/'vaso'), stay_id, starttime, endtime, quantity and the `raw` column
    (the raw fluid volume; pass raw="quantity" when the table has only one volume); `windows` needs
    stay_id, window_start, window_end, n_bins.
    """
    sql = BIN_DOSES_SQL.format(bin_seconds=bin_hours * 3600, doses=doses, windows=windows, raw=raw)
    return con.execute(sql).df()
