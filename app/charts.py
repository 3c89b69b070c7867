"""Pure chart builders for the review app: frames in, plotly figures out (no Streamlit here).

Each chart mirrors a view of the AI Clinician Explorer (Chen et al., CHI 2023): cohort funnel,
action heatmaps of clinicians vs policy, a per-stay treatment timeline and the action values
of one bin; plus OPE intervals and behaviour-model calibration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

GIVEN_COLOUR = "#4c78a8"
RECOMMENDED_COLOUR = "#f58518"
FLAG_COLOUR = "#d62728"


def _titled(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    fig.update_layout(title=title, height=height, margin={"l": 60, "r": 20, "t": 60, "b": 50})
    return fig


def inclusion_funnel(funnel: pd.DataFrame) -> go.Figure:
    """Stays remaining after each inclusion rule (`rule`, `description`, `remaining`)."""
    labels = funnel["description"].where(funnel["description"].astype(bool), funnel["rule"])
    fig = go.Figure(go.Funnel(y=list(labels), x=list(funnel["remaining"]), textinfo="value+percent initial"))
    return _titled(fig, "Inclusion funnel (stays remaining)")


def quarantine_by_rule(counts: pd.DataFrame) -> go.Figure:
    """Quarantined rows per rule, coloured by stage (`stage`, `rule`, `rows`)."""
    fig = go.Figure()
    for stage, part in counts.groupby("stage", sort=True):
        part = part.sort_values("rows")
        fig.add_bar(y=list(part["rule"]), x=list(part["rows"]), orientation="h", name=str(stage))
    fig.update_layout(barmode="stack", xaxis_title="rows quarantined")
    return _titled(fig, "Quarantined rows by rule", height=max(300, 40 * len(counts) + 120))


def demographics(cohort: pd.DataFrame, age_column: str | None, group_column: str | None) -> go.Figure:
    """Age distribution (histogram) split by a group column such as gender, when present."""
    fig = go.Figure()
    if age_column is None:
        counts = cohort[group_column].value_counts() if group_column else pd.Series(dtype=int)
        fig.add_bar(x=[str(k) for k in counts.index], y=list(counts.values))
        return _titled(fig, f"Stays by {group_column}" if group_column else "Stays")
    groups = cohort.groupby(group_column, sort=True) if group_column else [("all stays", cohort)]
    for name, part in groups:
        fig.add_histogram(x=part[age_column], name=str(name), nbinsx=20, opacity=0.75)
    fig.update_layout(barmode="overlay", xaxis_title=age_column, yaxis_title="stays")
    return _titled(fig, "Age by " + (group_column or "stay"))


def _grid_counts(actions: np.ndarray, grid: Sequence[int]) -> np.ndarray:
    rows, cols = int(grid[0]), int(grid[1])
    counts = np.bincount(np.asarray(actions, dtype=np.int64), minlength=rows * cols)[: rows * cols]
    return counts.reshape(rows, cols) / max(1, len(actions))


def action_heatmap(
    clinician_actions: np.ndarray, policy_actions: np.ndarray | None, grid: Sequence[int] = (5, 5)
) -> go.Figure:
    """Share of bins in each (fluid bin, vasopressor bin) cell: clinicians beside the policy."""
    panels = [("Clinicians", clinician_actions)]
    if policy_actions is not None:
        panels.append(("Policy", policy_actions))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels])
    shares = [_grid_counts(actions, grid) for _, actions in panels]
    top = max(0.01, max(float(share.max()) for share in shares))  # one colour scale for both panels
    for i, share in enumerate(shares, start=1):
        fig.add_heatmap(
            z=share, x=[f"V{v}" for v in range(grid[1])], y=[f"F{f}" for f in range(grid[0])],
            colorscale="Blues", zmin=0, zmax=top, showscale=i == len(panels),
            text=np.round(share * 100, 1), texttemplate="%{text}%", row=1, col=i,
            hovertemplate="fluid bin %{y}, vasopressor bin %{x}: %{z:.1%}<extra></extra>",
        )
        fig.update_xaxes(title_text="vasopressor bin", row=1, col=i)
        fig.update_yaxes(title_text="IV fluid bin", row=1, col=i)
    return _titled(fig, "Actions: clinicians vs policy (share of bins)", height=420)


def state_timeline(stay: pd.DataFrame, columns: Sequence[str], time_column: str = "bin_start") -> go.Figure:
    """One small panel per vital, lab or SOFA column over the stay's bins."""
    columns = [c for c in columns if c in stay.columns]
    if not columns:
        return _titled(go.Figure(), "No vitals or labs selected")
    fig = make_subplots(rows=len(columns), cols=1, shared_xaxes=True, subplot_titles=list(columns))
    for i, name in enumerate(columns, start=1):
        fig.add_scatter(x=stay[time_column], y=stay[name], mode="lines+markers", name=name, row=i, col=1)
    fig.update_layout(showlegend=False)
    return _titled(fig, "Vitals, labs and scores over the stay", height=max(300, 150 * len(columns) + 80))


def doses_given_vs_recommended(doses: pd.DataFrame, time_column: str = "bin_start") -> go.Figure:
    """Given beside recommended dose per bin, one panel per dose, out-of-support bins flagged.

    `doses` is long: `time_column`, `dose` (label with unit), `given`, `recommended`,
    `out_of_support` (recommendation the clinicians almost never made in such states).
    """
    labels = list(dict.fromkeys(doses["dose"]))
    fig = make_subplots(rows=max(1, len(labels)), cols=1, shared_xaxes=True, subplot_titles=labels)
    for i, label in enumerate(labels, start=1):
        part = doses[doses["dose"] == label]
        first = i == 1
        fig.add_bar(x=part[time_column], y=part["given"], name="given", marker_color=GIVEN_COLOUR,
                    legendgroup="given", showlegend=first, row=i, col=1)
        fig.add_bar(x=part[time_column], y=part["recommended"], name="recommended",
                    marker_color=RECOMMENDED_COLOUR, legendgroup="rec", showlegend=first, row=i, col=1)
        flagged = part[part["out_of_support"].astype(bool)]
        top = float(np.nanmax(part[["given", "recommended"]].to_numpy(dtype=float), initial=0.0))
        fig.add_scatter(
            x=flagged[time_column], y=[top * 1.1 + 1e-9] * len(flagged), mode="markers",
            marker={"symbol": "x", "size": 12, "color": FLAG_COLOUR}, name="out of support",
            legendgroup="oos", showlegend=first,
            hovertemplate="out of support: clinicians rarely chose this action here<extra></extra>",
            row=i, col=1,
        )
        fig.update_yaxes(title_text=label.split(", ", 1)[-1], row=i, col=1)
    fig.update_layout(barmode="group")
    return _titled(fig, "Doses given vs recommended (x = out of support)", height=max(320, 220 * len(labels)))


def action_values(
    q_values: Sequence[float], grid: Sequence[int], given_action: int, recommended_action: int
) -> go.Figure:
    """The policy's value of every action in one bin, with the given and recommended cells marked."""
    q = np.asarray(q_values, dtype=float)
    if len(grid) == 2 and int(grid[0]) * int(grid[1]) == q.size:
        rows, cols = int(grid[0]), int(grid[1])
        fig = go.Figure(go.Heatmap(
            z=q.reshape(rows, cols), x=list(range(cols)), y=list(range(rows)), colorscale="Viridis",
            text=np.round(q.reshape(rows, cols), 3), texttemplate="%{text}",
            hovertemplate="fluid bin %{y}, vasopressor bin %{x}: %{z:.3f}<extra></extra>",
        ))
        for action, label, colour, size in ((given_action, "given", GIVEN_COLOUR, 44),
                                            (recommended_action, "recommended", RECOMMENDED_COLOUR, 32)):
            marker = {"symbol": "square-open", "size": size, "color": colour, "line": {"width": 4}}
            fig.add_scatter(x=[action % cols], y=[action // cols], mode="markers", name=label, marker=marker)
        fig.update_layout(xaxis_title="vasopressor bin", yaxis_title="IV fluid bin",
                          legend={"orientation": "h", "y": -0.25, "x": 0})
    else:
        colours = [RECOMMENDED_COLOUR if a == recommended_action else
                   GIVEN_COLOUR if a == given_action else "#9d9d9d" for a in range(q.size)]
        fig = go.Figure(go.Bar(x=list(range(q.size)), y=q, marker_color=colours))
        fig.update_layout(xaxis_title="action", yaxis_title="Q value")
    return _titled(fig, "Action values in this bin (Q)", height=420)


def ope_forest(estimates: pd.DataFrame, references: Mapping[str, float] | None = None,
               ranges: Mapping[str, tuple[float, float]] | None = None) -> go.Figure:
    """Each estimator's value with its interval, one row per estimator and one marker per target
    (the policy beside the clinicians); `estimator`, `target`, `value`, `ci_low`, `ci_high`.
    `ranges` shades, per target, the range of values the data allow (its support bounds)."""
    order = list(dict.fromkeys(estimates["estimator"]))
    targets = list(dict.fromkeys(estimates["target"]))
    fig = go.Figure()
    for i, target in enumerate(targets):
        part = estimates[estimates["target"] == target]
        offset = 0.0 if len(targets) == 1 else 0.3 * (0.5 - i / (len(targets) - 1))
        y = [len(order) - 1 - order.index(e) + offset for e in part["estimator"]]
        colour = "#7f7f7f" if target == "clinicians" else ["#1f77b4", "#ff7f0e", "#2ca02c"][i % 3]
        fig.add_scatter(
            x=part["value"], y=y, mode="markers", name=str(target), marker={"size": 10, "color": colour},
            error_x={"type": "data", "symmetric": False, "array": part["ci_high"] - part["value"],
                     "arrayminus": part["value"] - part["ci_low"], "color": colour},
            customdata=part["estimator"],
            hovertemplate=f"{target} · %{{customdata}}: %{{x:.3f}}<extra></extra>",
        )
    for target, (low, high) in (ranges or {}).items():
        fig.add_vrect(x0=low, x1=high, fillcolor="#9467bd", opacity=0.12, line_width=0, layer="below",
                      annotation_text=f"range the data allow ({target})", annotation_position="bottom left")
    for label, value in (references or {}).items():
        fig.add_vline(x=value, line_dash="dash", line_color="#2ca02c",
                      annotation_text=f"{label}: {value:.3f}", annotation_position="top")
    fig.update_yaxes(tickvals=list(range(len(order))), ticktext=order[::-1], range=[-0.6, len(order) - 0.4])
    fig.update_layout(xaxis_title="estimated policy value (expected return)", legend_title_text="target")
    title = "Off-policy estimates with intervals"
    scale = _forest_scale(estimates)
    if scale is not None:
        (low, high), off = scale
        fig.update_xaxes(range=[low, high])
        title += "<br><sup>off scale: " + "; ".join(off) + "</sup>"
    return _titled(fig, title, height=max(300, 60 * len(order) + 150))


def _forest_scale(estimates: pd.DataFrame) -> tuple[tuple[float, float], list[str]] | None:
    """An x range that keeps the bulk of the estimates readable when one (typically ordinary IS,
    whose weights are unbounded) is orders of magnitude away; None when all fit."""
    values = estimates["value"].to_numpy(dtype=float)
    centre = float(np.median(values))
    spread = max(float(np.median(np.abs(values - centre))), 0.1 * abs(centre), 1e-9)
    inside = np.abs(values - centre) <= 20 * spread
    if inside.all():
        return None
    core = estimates[inside]
    low, high = float(core["ci_low"].min()), float(core["ci_high"].max())
    pad = 0.1 * max(high - low, 1e-9)
    off = [f"{r.estimator} ({r.target}) {r.value:.3g} [{r.ci_low:.3g}, {r.ci_high:.3g}]"
           for r in estimates[~inside].itertuples()]
    return (low - pad, high + pad), off


def calibration(curve: pd.DataFrame) -> go.Figure:
    """Behaviour-model reliability: top-label confidence vs accuracy per bin (`confidence`, `accuracy`)."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash", "color": "#7f7f7f"},
                    name="perfect calibration")
    sizes = curve.get("count")
    fig.add_scatter(x=curve["confidence"], y=curve["accuracy"], mode="lines+markers", name="behaviour model",
                    text=sizes, hovertemplate="confidence %{x:.2f}, accuracy %{y:.2f}<extra></extra>")
    fig.update_layout(xaxis_title="top-label confidence (mean per bin)",
                      yaxis_title="accuracy (top label taken)", xaxis_range=[0, 1], yaxis_range=[0, 1])
    return _titled(fig, "Behaviour model calibration", height=400)
