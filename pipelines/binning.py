"""Dose -> discrete bin, shared by every ETL: bin 0 for a zero dose, then (e[k-1], e[k]] bins.

A dose d falls in bin `searchsorted(edges, d, side="left")`: 0 for d <= 0, k for
edges[k-1] < d <= edges[k], the last bin above edges[-1]. The edges go to the manifest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DOSE_BIN_RULE = (
    "bin = searchsorted(edges, dose, side='left'): dose <= edges[0] = 0 -> bin 0; "
    "edges[k-1] < dose <= edges[k] -> bin k; dose > edges[-1] -> last bin"
)
BINNING_RULE = DOSE_BIN_RULE + "; action = fluid_bin * n_vaso_bins + vaso_bin"


def discretize_doses(doses: pd.Series, edges: list[float]) -> np.ndarray:
    """Bin index of each dose for the given edges (see module doc)."""
    bins = np.searchsorted(np.asarray(edges, dtype="float64"), doses.to_numpy(dtype="float64"), side="left")
    return np.asarray(bins, dtype="int64")
