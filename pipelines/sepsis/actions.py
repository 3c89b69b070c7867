"""Discrete action grid: per dose a zero bin plus quantile bins of the non-zero train-split doses.

As in the AI Clinician (Komorowski 2018): 5 fluid x 5 vasopressor bins = 25 actions; the edges are
fitted on the train split only and recorded in the manifest. A dose d falls in bin
`searchsorted(edges, d, side="left")`: 0 for d <= 0, k for edges[k-1] < d <= edges[k], last bin above.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..binning import BINNING_RULE, discretize_doses

__all__ = ["BINNING_RULE", "combine_actions", "discretize_doses", "edge_quantiles", "edges_from_quantiles",
           "fit_dose_edges"]


def edge_quantiles(n_bins: int) -> list[float]:
    """The quantile levels of the inner edges: n_bins - 2 evenly spaced in (0, 1)."""
    return [float(q) for q in np.linspace(0.0, 1.0, n_bins)[1:-1]]


def edges_from_quantiles(inner: list[float] | np.ndarray | None, n_bins: int) -> list[float]:
    """Edges [0, q_1, ..., q_{n-2}] from the quantile values (non-decreasing; all 0 for None: no doses)."""
    values = np.zeros(n_bins - 2) if inner is None else np.asarray(inner, dtype="float64")
    return [0.0, *(float(x) for x in np.maximum.accumulate(values))]


def fit_dose_edges(train_doses: pd.Series, n_bins: int) -> list[float]:
    """Edges [0, q_1, ..., q_{n-2}] from quantiles of the non-zero train doses (all 0 when none);
    numpy's linear interpolation, which Spark's `percentile` also uses."""
    nonzero = train_doses[train_doses > 0].to_numpy(dtype="float64")
    inner = np.quantile(nonzero, edge_quantiles(n_bins)) if len(nonzero) else None
    return edges_from_quantiles(inner, n_bins)


def combine_actions(fluid_bin: np.ndarray, vaso_bin: np.ndarray, n_vaso_bins: int) -> np.ndarray:
    """One discrete action per step: fluid_bin * n_vaso_bins + vaso_bin."""
    return np.asarray(fluid_bin * n_vaso_bins + vaso_bin, dtype="int64")
