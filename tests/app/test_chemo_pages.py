"""Chemotherapy and sepsis datasets in one data root: each page shows what fits the chosen dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.app.test_pages import PAGES, _app, _visit


def _titles(at: object) -> list[str]:
    charts = at.get("plotly_chart")  # type: ignore[attr-defined]
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in charts]


def test_chemo_cohort_and_cycle_timeline(monkeypatch: pytest.MonkeyPatch, chemo_root: Path) -> None:
    at = _app(monkeypatch, chemo_root)
    _visit(at, None)
    assert set(at.selectbox(key="dataset_pick").options) >= {"chemo", "icu_sepsis"}
    at.selectbox(key="dataset_pick").set_value("chemo").run()
    assert [m.label for m in at.metric][:2] == ["Patients", "Cycles"]
    titles = _titles(at)
    for wanted in ("Regimen mix", "Cycles per patient", "RDI distribution", "Toxicity rates per cycle"):
        assert any(t.startswith(wanted) for t in titles), (wanted, titles)
    _visit(at, PAGES[0])
    timeline = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert timeline["layout"]["title"]["text"] == "Cycle timeline"
    panels = [a["text"] for a in timeline["layout"]["annotations"]]
    assert "Dose, % of planned" in panels and "1.5: delay below" in panels and "Tumour size, mm" in panels
    names = {trace.get("name") for trace in timeline["data"]}
    assert {"planned", "delivered dose", "ANC at cycle start", "nadir", "recommended RDI"} <= names
    at.selectbox(key="dataset_pick").set_value("icu_sepsis").run()
    _visit(at, "app_pages/cohort_overview.py")
    assert [m.label for m in at.metric][:2] == ["Stays", "Bins"]
    assert not any(t.startswith("Regimen mix") for t in _titles(at))
