"""The `binning` stage: kept events -> one value per stay x bin x variable, pivoted onto the
stay x bin grid with the dose bins and the worst SOFA of each bin.

SQL: `pipelines/sql/sepsis/binned_measurements.sql` (the aggregate, long) and `sofa_bins.sql`; the
pivot to one column per variable is `pivot_binned`, a pure function on the (small) aggregate.
"""

from __future__ import annotations

import pandas as pd

from ..sources.duckdb_catalog import MimicCatalog
from .stage_sql import run_sql_file

TABLES = ("binned_measurements", "sofa_bins")


def pivot_binned(long: pd.DataFrame, variables: list[str]) -> pd.DataFrame:
    """(stay_id, bin, variable, value) -> one row per stay x bin (sorted), one column per variable
    in `variables` order (NaN where the bin has none); a bin with only other variables keeps its row."""
    wide = long.set_index(["stay_id", "bin", "variable"])["value"].unstack("variable")
    wide = wide.reindex(columns=variables).rename_axis(columns=None).sort_index().reset_index()
    return wide.astype({v: "float64" for v in variables})


def bin_measurements(cat: MimicCatalog, variables: list[str]) -> pd.DataFrame:
    """Per stay x bin, one column per variable: mean (sum for volumes, max for indicators)."""
    run_sql_file(cat, "binned_measurements")
    return pivot_binned(cat.df("SELECT * FROM binned_measurements", what="binned measurements"), variables)


def sofa_bins(cat: MimicCatalog, bin_hours: int) -> pd.DataFrame:
    """Worst rolling-24 h SOFA per stay x bin (`sofa_bins.sql`)."""
    run_sql_file(cat, "sofa_bins", {"bin_seconds": bin_hours * 3600})
    return cat.df("SELECT * FROM sofa_bins", what="SOFA per bin")
