"""Chart builders for chemotherapy datasets (frames in, plotly figures out; no Streamlit here).

The cycle timeline follows how oncologists read a dose-intensity record: dose as % of planned per
cycle (planned, delivered, RDI, recommended), the ANC at each cycle start with the cycle's nadir and
the 1.5 x 10^9/L line below which a cycle is delayed, the CTCAE grades, and the tumour burden.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .charts import FLAG_COLOUR, GIVEN_COLOUR, RECOMMENDED_COLOUR, _titled

ANC_LINE = 1.5


def cycles_per_patient(counts: pd.Series) -> go.Figure:
    """Histogram of the number of cycles per patient."""
    values = counts.value_counts().sort_index()
    fig = go.Figure(go.Bar(x=[int(v) for v in values.index], y=list(values.to_numpy()),
                           marker_color=GIVEN_COLOUR))
    fig.update_layout(xaxis_title="cycles per patient", yaxis_title="patients")
    return _titled(fig, "Cycles per patient", height=320)


def rdi_distribution(rdi: np.ndarray, edges: list[float] | None = None) -> go.Figure:
    """Histogram of the relative dose intensity of every cycle (dashed: the action bin edges)."""
    fig = go.Figure(go.Histogram(x=100.0 * np.asarray(rdi), nbinsx=40, marker_color=GIVEN_COLOUR))
    for edge in (edges or [])[1:]:
        fig.add_vline(x=100.0 * edge, line_dash="dash", line_color="gray")
    fig.update_layout(xaxis_title="relative dose intensity, % of planned", yaxis_title="cycles")
    return _titled(fig, "RDI distribution (dashed: action bin edges)", height=320)


def regimen_mix(regimens: pd.Series) -> go.Figure:
    """Patients per regimen."""
    fig = go.Figure(go.Bar(x=list(regimens.to_numpy()), y=[str(r) for r in regimens.index], orientation="h",
                           marker_color=GIVEN_COLOUR))
    fig.update_layout(xaxis_title="patients")
    return _titled(fig, "Regimen mix", height=max(220, 60 * len(regimens) + 120))


def toxicity_rates(rates: pd.DataFrame) -> go.Figure:
    """Share of cycles followed by each toxicity (grade >= 3; febrile neutropenia: any)."""
    labels = [f"{r.category} ({r.threshold})" for r in rates.itertuples()]
    fig = go.Figure(go.Bar(x=100.0 * rates["share_of_cycles"].to_numpy(), y=labels, orientation="h",
                           marker_color=FLAG_COLOUR))
    fig.update_layout(xaxis_title="% of cycles")
    return _titled(fig, "Toxicity rates per cycle", height=max(260, 40 * len(rates) + 120))


def cycle_timeline(cycles: pd.DataFrame, grades: pd.DataFrame) -> go.Figure:
    """Four panels per cycle: dose % of planned, ANC with nadir and the 1.5 line, grades, tumour."""
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("Dose, % of planned", "ANC, 10^9/L (start of cycle; nadir)",
                                        "CTCAE grade", "Tumour size, mm"))
    x = cycles["cycle"]
    fig.add_scatter(x=x, y=cycles["planned_pct"], name="planned", mode="lines", line={"dash": "dot",
                    "color": "gray"}, row=1, col=1)
    fig.add_scatter(x=x, y=cycles["delivered_pct"], name="delivered dose", mode="lines+markers",
                    marker_color=GIVEN_COLOUR, row=1, col=1)
    fig.add_scatter(x=x, y=cycles["rdi_pct"], name="RDI (dose x timing)", mode="lines+markers",
                    line={"dash": "dash"}, marker_color="#72b7b2", customdata=cycles["delay_days"],
                    hovertemplate="RDI %{y:.0f} %, delay %{customdata:.0f} d<extra></extra>", row=1, col=1)
    if cycles["recommended_pct"].notna().any():
        fig.add_scatter(x=x, y=cycles["recommended_pct"], name="recommended RDI", mode="markers",
                        marker={"color": RECOMMENDED_COLOUR, "size": 10, "symbol": "diamond"}, row=1, col=1)
        flagged = cycles[cycles["out_of_support"]]
        if len(flagged):
            fig.add_scatter(x=flagged["cycle"], y=flagged["recommended_pct"], name="out of support",
                            mode="markers", marker={"symbol": "x", "size": 13, "color": FLAG_COLOUR},
                            row=1, col=1)
    fig.add_scatter(x=x, y=cycles["anc"], name="ANC at cycle start", mode="lines+markers",
                    marker_color=GIVEN_COLOUR, row=2, col=1)
    fig.add_scatter(x=x, y=cycles["nadir"], name="nadir", mode="markers", marker={"symbol": "triangle-down",
                    "size": 10, "color": FLAG_COLOUR}, row=2, col=1)
    fig.add_hline(y=ANC_LINE, line_dash="dash", line_color=FLAG_COLOUR, row=2, col=1,
                  annotation_text="1.5: delay below", annotation_position="top left")
    for category in grades.columns:
        fig.add_scatter(x=x, y=grades[category].to_numpy(), name=category.replace("_", " "),
                        mode="lines+markers", row=3, col=1)
    fig.add_scatter(x=x, y=cycles["tumour_mm"], name="tumour size", mode="lines+markers",
                    marker_color="#54a24b", row=4, col=1)
    fig.update_yaxes(range=[-0.2, 4.5], row=3, col=1)
    fig.update_xaxes(title_text="cycle", row=4, col=1, dtick=1)
    return _titled(fig, "Cycle timeline", height=900)
