"""Learning curves of a tracked run, drawn from its MLflow metric history.

Built on `matplotlib.figure.Figure` directly (no pyplot), so nothing depends on a display or a
global backend and figures are freed as soon as they are logged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

History = Mapping[str, Sequence[tuple[int, float]]]


def learning_curve_figure(history: History, title: str = "Training") -> Figure:
    """One small panel per metric (value against gradient step), in name order."""
    names = sorted(name for name, points in history.items() if points)
    if not names:
        raise ValueError("No metric history to plot.")
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    figure = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False)
    for index, name in enumerate(names):
        ax = axes[index // cols][index % cols]
        points = sorted(history[name])
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 30 else None)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("gradient step")
        ax.grid(alpha=0.3)
    for index in range(len(names), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    figure.suptitle(title)
    return figure
