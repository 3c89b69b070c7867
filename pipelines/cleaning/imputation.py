"""Sample-and-hold up to a per-variable maximum, then a configured fill, recording what was imputed.

Hold times come from rules/hold_hours.csv (AI Clinician, Komorowski 2018); the mask codes are
0 = measured in the bin, 1 = held from an earlier bin, 2 = filled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

MEASURED, HELD, FILLED = 0, 1, 2


def hold_bins(hold_hours: Mapping[str, float], bin_hours: int) -> dict[str, int]:
    """Hold limits in bins: a value measured in bin b may fill bins b+1..b+k."""
    return {name: max(0, math.floor(hours / bin_hours)) for name, hours in hold_hours.items()}


def sample_and_hold(
    grid: pd.DataFrame, columns: Sequence[str], limits: Mapping[str, int], group: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forward-fill each column within `group` for at most `limits[col]` bins; return (held, mask).

    `grid` must be sorted by group then time. The mask holds MEASURED/HELD codes (NaN left = not yet filled).
    """
    held = grid.copy()
    mask = pd.DataFrame(
        np.where(grid[list(columns)].notna().to_numpy(), MEASURED, -1).astype("int8"),
        columns=list(columns),
        index=grid.index,
    )
    by_limit: dict[int, list[str]] = {}
    for col in columns:
        by_limit.setdefault(int(limits.get(col, 0)), []).append(col)
    grouped = grid.groupby(group, sort=False)
    for limit, cols in by_limit.items():
        if limit > 0:
            held[cols] = grouped[cols].ffill(limit=limit)
    newly = held[list(columns)].notna().to_numpy() & (mask.to_numpy() == -1)
    mask = mask.mask(newly, HELD)
    return held, mask


def fill_remaining(held: pd.DataFrame, mask: pd.DataFrame, values: Mapping[str, float]) -> pd.DataFrame:
    """Fill what the hold left empty with `values[col]`; mark those cells FILLED in `mask` (in place)."""
    out = held.copy()
    for col, value in values.items():
        empty = out[col].isna()
        out.loc[empty, col] = float(value)
        mask.loc[empty.to_numpy(), col] = FILLED
    return out


def fill_values(
    held: pd.DataFrame,
    columns: Sequence[str],
    strategy: str,
    train_rows: pd.Series,
    defaults: Mapping[str, float],
    always_default: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """Fill value per column: train-split median (else the default), the default, or zero.

    Columns in `always_default` (indicators such as mechanical ventilation) always take their default.
    """
    medians = (
        {col: held.loc[train_rows.to_numpy(), col].median() for col in columns}
        if strategy == "train_median" else {}
    )
    return fill_values_from(columns, strategy, medians, defaults, always_default)


def fill_values_from(
    columns: Sequence[str],
    strategy: str,
    medians: Mapping[str, float],
    defaults: Mapping[str, float],
    always_default: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """`fill_values` from train medians computed elsewhere (e.g. by Spark); a missing or NaN median
    falls back to the column's default."""
    values: dict[str, float] = {}
    for col in columns:
        if col in always_default:
            values[col] = float(defaults[col])
        elif strategy == "zero":
            values[col] = 0.0
        elif strategy == "fill_default":
            values[col] = float(defaults[col])
        else:
            median = medians.get(col)
            values[col] = float(median) if median is not None and pd.notna(median) else float(defaults[col])
    return values
