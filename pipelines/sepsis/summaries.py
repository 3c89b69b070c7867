"""Summaries for the sepsis manifest: SOFA per bin, fluid conservation, care systems, weight fallback."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..sources.duckdb_catalog import MimicCatalog

#: Worst rolling-24 h SOFA among the ICU hours that start inside each bin.
SOFA_BINS = """
SELECT s.stay_id, CAST(floor(date_diff('second', w.window_start, s.starttime) / {bs}) AS BIGINT) AS bin,
       CAST(max(s.sofa_24h) AS DOUBLE) AS sofa_24h
FROM sofa s JOIN cohort_windows w USING (stay_id)
WHERE s.starttime >= w.window_start AND s.starttime < w.window_end
GROUP BY ALL
"""


def fluid_in_windows(cat: MimicCatalog) -> float:
    """Kept fluid volume inside the windows, computed without bins (checks conservation)."""
    rows = cat.con.execute("""
        SELECT coalesce(sum(CASE WHEN d.endtime = d.starttime THEN d.quantity ELSE d.quantity *
            greatest(0, date_diff('millisecond', greatest(d.starttime, w.window_start), least(d.endtime,
                w.window_end)))
            / date_diff('millisecond', d.starttime, d.endtime) END), 0)
        FROM kept_doses d JOIN cohort_windows w USING (stay_id) WHERE d.kind = 'fluid'""").fetchall()
    return round(float(rows[0][0]), 3)


def care_systems(stays: pd.DataFrame, cohort: pd.DataFrame) -> dict[str, dict[str, int]]:
    """ICU stays and cohort episodes per care system (CareVue / MetaVision)."""
    return {
        "icu_stays": stays["care_system"].value_counts().to_dict(),
        "cohort": cohort["care_system"].value_counts().to_dict(),
    }


def weight_fallback(cat: MimicCatalog, cohort: pd.DataFrame) -> dict[str, Any]:
    """The named missing-weight fallback, its value, and how many cohort vasopressor rows used it."""
    cat.con.register("_cohort_ids", cohort[["stay_id"]])
    rows = cat.con.execute("""
        SELECT weight_source, count(*) FROM norepinephrine_equivalent_dose
        WHERE stay_id IN (SELECT stay_id FROM _cohort_ids) GROUP BY 1 ORDER BY 1""").fetchall()
    value = cat.con.execute("""
        SELECT CASE p.weight_fallback WHEN 'population_median'
                    THEN coalesce((SELECT median(weight_kg) FROM weight), p.weight_fallback_kg)
                    ELSE p.weight_fallback_kg END, p.weight_fallback FROM etl_params p""").fetchall()[0]
    return {"name": f"fallback_{value[1]}", "kg": round(float(value[0]), 3),
            "vasopressor_rows_by_weight_source": {str(k): int(n) for k, n in rows}}
