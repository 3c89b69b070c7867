"""OPE figures (matplotlib, Agg backend): forest plot, weight histogram, action heatmap, reliability."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dosewise.data_schemas import write_bytes_atomic
from dosewise.data_schemas.ope import DensityCalibration, OpeEstimate, SupportBounds


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, Any]:
    """A pyplot-free figure (Agg canvas): no global state, safe in threads and servers."""
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    return write_bytes_atomic(path, lambda handle: fig.savefig(handle, format="png"))


def forest_plot(estimates: list[OpeEstimate], path: Path, reference: dict[str, float] | None = None,
                bounds: list[SupportBounds] | None = None) -> Path:
    """Every estimator x target with its bootstrap interval; dashed lines mark known true values,
    shaded bands the range of values the data allow (support bounds, with their interval)."""
    fig, ax = _figure(7.0, 0.35 * len(estimates) + 1.5)
    targets = sorted({e.target for e in estimates})
    colours = dict(zip(targets, ["tab:blue", "tab:orange", "tab:green", "tab:red"], strict=False))
    for row, est in enumerate(estimates):
        colour = colours.get(est.target, "tab:gray")
        ax.errorbar(est.value, row, xerr=[[est.value - est.ci_low], [est.ci_high - est.value]],
                    fmt="o", color=colour, capsize=3)
    ax.set_yticks(range(len(estimates)), [f"{e.estimator} · {e.target}" for e in estimates])
    ax.invert_yaxis()
    for name, value in (reference or {}).items():
        ax.axvline(value, linestyle="--", color=colours.get(name, "gray"), alpha=0.6)
    for item in bounds or []:
        ax.axvspan(item.ci_low, item.ci_high, color=colours.get(item.target, "tab:purple"), alpha=0.1,
                   label=f"range the data allow: {item.target}")
    if bounds:
        ax.legend(loc="lower right", fontsize="small")
    ax.set_xlabel("estimated policy value (expected return) with bootstrap interval")
    ax.set_title("Off-policy estimates")
    return _save(fig, path)


def weight_histogram(weights: dict[str, np.ndarray], path: Path) -> Path:
    """Histogram of log10 trajectory importance weights per target (zeros counted apart)."""
    fig, ax = _figure(7.0, 4.0)
    for target, w in weights.items():
        positive = w[w > 0]
        label = f"{target} ({int((w == 0).sum())} zero of {w.size})"
        if positive.size:
            ax.hist(np.log10(positive), bins=50, alpha=0.55, label=label)
    ax.set_xlabel("log10 trajectory importance weight")
    ax.set_ylabel("episodes")
    ax.legend()
    ax.set_title("Importance weights")
    return _save(fig, path)


def action_heatmap(clinician: np.ndarray, policy: np.ndarray, grid: list[int], path: Path) -> Path:
    """Side by side: share of steps in each (fluid bin, vasopressor bin) cell, clinicians vs policy."""
    rows, cols = (grid if len(grid) == 2 else [int(max(clinician.max(), policy.max())) + 1, 1])
    fig, axes = _figure(9.0, 4.2, ncols=2)
    for ax, actions, title in zip(axes, (clinician, policy), ("clinicians", "policy"), strict=True):
        counts = np.bincount(actions, minlength=rows * cols)[: rows * cols].reshape(rows, cols)
        share = counts / max(counts.sum(), 1)
        image = ax.imshow(share, cmap="viridis", origin="lower")
        for (i, j), value in np.ndenumerate(share):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="white", fontsize=7)
        ax.set_title(f"{title}: share of steps")
        ax.set_xlabel("vasopressor bin")
        ax.set_ylabel("IV fluid bin")
        fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)


def reliability_plot(reliability: pd.DataFrame, path: Path, ece: float) -> Path:
    """Top-label confidence vs accuracy of the behaviour model on the held-out split."""
    fig, ax = _figure(5.0, 5.0)
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfectly calibrated")
    ax.plot(reliability["confidence"], reliability["accuracy"], marker="o", label="behaviour model")
    ax.set_xlabel("predicted probability of the top action")
    ax.set_ylabel("observed frequency")
    ax.set_title(f"Behaviour model reliability (ECE {ece:.3f})")
    ax.legend()
    return _save(fig, path)


def pit_histogram(calibration: DensityCalibration, path: Path) -> Path:
    """PIT histogram of the behaviour dose density on the held-out split (flat = calibrated), with
    the coverage of its central predictive intervals."""
    fig, ax = _figure(5.5, 4.0)
    shares = np.asarray(calibration.pit_histogram)
    edges = np.linspace(0.0, 1.0, len(shares) + 1)
    ax.bar(edges[:-1], shares, width=np.diff(edges), align="edge", edgecolor="white", label="logged doses")
    ax.axhline(1.0 / len(shares), linestyle="--", color="gray", label="calibrated")
    coverage = ", ".join(f"{float(k):.0%}: {v:.0%}" for k, v in calibration.interval_coverage.items())
    ax.set_xlabel("PIT  u = F(logged dose | state)")
    ax.set_ylabel("share of logged doses")
    ax.set_title(f"Dose density calibration (KS {calibration.pit_ks:.3f})\ninterval coverage {coverage}",
                 fontsize=9)
    ax.legend()
    return _save(fig, path)
