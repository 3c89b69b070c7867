"""Held-out quality of the behaviour model: log-loss, top-label ECE and a reliability table.

ECE as in Guo et al. 2017 ("On calibration of modern neural networks"): top-label confidence in
equal-width bins, weighted by the share of rows in each bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class CalibrationResult:
    """Held-out metrics of a probabilistic classifier and its reliability table."""

    log_loss: float
    ece: float
    accuracy: float
    reliability: pd.DataFrame  # bin, confidence, accuracy, count


def calibration_metrics(
    probabilities: np.ndarray, actions: np.ndarray, n_bins: int = 15, floor: float = 1e-15
) -> CalibrationResult:
    """Log-loss (probabilities floored at `floor`), ECE and reliability of (n, A) probabilities.

    >>> p = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> round(calibration_metrics(p, np.array([0, 1])).accuracy, 2)
    1.0
    """
    rows = np.arange(len(actions))
    p_logged = np.clip(probabilities[rows, actions], floor, 1.0)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == actions).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    table = (
        pd.DataFrame({"bin": bins, "confidence": confidence, "accuracy": correct})
        .groupby("bin")
        .agg(confidence=("confidence", "mean"), accuracy=("accuracy", "mean"),
             count=("accuracy", "size"))
        .reset_index()
    )
    ece = float(np.sum(table["count"] * (table["confidence"] - table["accuracy"]).abs()) / len(actions))
    return CalibrationResult(
        log_loss=float(-np.mean(np.log(p_logged))),
        ece=ece,
        accuracy=float(correct.mean()),
        reliability=table,
    )
