"""Action bins <-> doses: per-bin representative doses and the continuous-to-bin projection.

The dataset's manifest gives the bin edges of each dose column and the grid (5 x 5 for fluids x
vasopressors, action = fluid_bin * 5 + vaso_bin). Policies report doses in units, so every bin
needs a representative dose: the median of the train split's doses given in that bin.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dosewise.data_schemas import BadInputError, TrajectoryDatasetInfo
from dosewise.data_schemas import columns as c

from .datasets import DoseScaler


def action_grid(info: TrajectoryDatasetInfo) -> list[int]:
    """Bins per dose column; a single column of `n_actions` bins when the manifest has no grid."""
    grid = list(info.action_grid) or [info.n_actions]
    if int(np.prod(grid)) != info.n_actions:
        raise BadInputError(
            f"The manifest's action_grid {grid} does not multiply to n_actions={info.n_actions}.",
            "Re-run the producer of the trajectories; its manifest is inconsistent.",
        )
    return grid


def grid_strides(grid: list[int]) -> list[int]:
    """Row-major strides: action = sum(bin_j * stride_j)."""
    return [int(np.prod(grid[j + 1 :])) for j in range(len(grid))]


def marginal_bins(actions: np.ndarray, grid: list[int]) -> np.ndarray:
    """(n, len(grid)) per-dose-column bin of each action index."""
    strides = grid_strides(grid)
    return np.stack([(actions // s) % g for s, g in zip(strides, grid, strict=True)], axis=1)


def representative_doses(
    frame: pd.DataFrame, dose_columns: list[str], info: TrajectoryDatasetInfo
) -> np.ndarray:
    """(n_actions, k) median dose of each column among train rows in each action bin.

    Bins never seen fall back to the median over rows sharing that column's marginal bin, then to
    the column's overall median.
    """
    n = info.n_actions
    out = np.full((n, len(dose_columns)), np.nan)
    if not dose_columns:
        return out
    grid = action_grid(info) if len(info.action_grid) == len(dose_columns) else None
    actions = frame[c.ACTION].to_numpy(np.int64)
    by_action = frame.groupby(c.ACTION)[dose_columns].median()
    out[by_action.index.to_numpy(), :] = by_action.to_numpy()
    for j, col in enumerate(dose_columns):
        values = frame[col].to_numpy(np.float64)
        missing = np.flatnonzero(np.isnan(out[:, j]))
        if grid is not None and len(missing):
            own = marginal_bins(actions, grid)[:, j]
            wanted = marginal_bins(missing, grid)[:, j]
            for a, b in zip(missing, wanted, strict=True):
                if (own == b).any():
                    out[a, j] = float(np.median(values[own == b]))
        out[np.isnan(out[:, j]), j] = float(np.median(values))
    return out


def inner_edges(info: TrajectoryDatasetInfo, dose_columns: list[str], grid: list[int]) -> np.ndarray:
    """(k, m) inner bin edges per dose column, padded with +inf (bin = count of edges <= dose)."""
    rows = []
    for col, g in zip(dose_columns, grid, strict=True):
        edges = list(info.action_bin_edges.get(col, []))
        if len(edges) == g + 1:
            edges = edges[1:-1]
        elif len(edges) != g - 1:
            raise BadInputError(
                f"Bin edges of `{col}` ({len(edges)} values) do not fit its {g} bins.",
                "Continuous algorithms need the manifest's action_bin_edges for every dose column.",
            )
        rows.append(edges)
    width = max(1, max(len(r) for r in rows))
    return np.array([r + [np.inf] * (width - len(r)) for r in rows], dtype=np.float64)


def continuous_spec(info: TrajectoryDatasetInfo, scaler: DoseScaler, doses: np.ndarray) -> dict[str, Any]:
    """What `ContinuousHead` needs: dose bounds, inner edges, strides, bin doses in [-1, 1]."""
    grid = action_grid(info)
    if len(grid) != len(scaler.columns):
        raise BadInputError(
            f"action_grid {grid} has {len(grid)} dimensions but there are "
            f"{len(scaler.columns)} dose columns.",
            "Re-run the producer; the grid must have one entry per dose column.",
        )
    edges = inner_edges(info, scaler.columns, grid)
    return {
        "low": scaler.low.tolist(), "high": scaler.high.tolist(),
        "inner_edges": [[float(v) if np.isfinite(v) else 3.0e38 for v in row] for row in edges],
        "strides": grid_strides(grid), "centres_unit": scaler.to_unit(doses).tolist(),
    }
