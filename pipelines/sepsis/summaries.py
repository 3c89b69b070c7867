"""Summaries for the sepsis manifest: care systems and the missing-weight fallback."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..sources.duckdb_catalog import MimicCatalog
from ..sources.spark_catalog import SparkCatalog


def care_systems(stays: pd.DataFrame, cohort: pd.DataFrame) -> dict[str, dict[str, int]]:
    """ICU stays and cohort episodes per care system (CareVue / MetaVision)."""
    return {
        "icu_stays": stays["care_system"].value_counts().to_dict(),
        "cohort": cohort["care_system"].value_counts().to_dict(),
    }


def weight_fallback(cat: MimicCatalog | SparkCatalog, cohort: pd.DataFrame) -> dict[str, Any]:
    """The named missing-weight fallback, its value, and how many cohort vasopressor rows used it."""
    cat.register("_cohort_ids", cohort[["stay_id"]])
    rows = cat.rows("""
        SELECT weight_source, count(*) FROM norepinephrine_equivalent_dose
        WHERE stay_id IN (SELECT stay_id FROM _cohort_ids) GROUP BY 1 ORDER BY 1""")
    value = cat.rows("""
        SELECT CASE p.weight_fallback WHEN 'population_median'
                    THEN coalesce((SELECT median(weight_kg) FROM weight), p.weight_fallback_kg)
                    ELSE p.weight_fallback_kg END, p.weight_fallback FROM etl_params p""")[0]
    return {"name": f"fallback_{value[1]}", "kg": round(float(value[0]), 3),
            "vasopressor_rows_by_weight_source": {str(k): int(n) for k, n in rows}}
