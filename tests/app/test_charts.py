"""Pure chart builders: frames in, plotly figures out, checked without Streamlit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dosewise.app import charts


def test_inclusion_funnel_keeps_rule_order_and_counts() -> None:
    funnel = pd.DataFrame({"rule": ["all", "adult", "sepsis3"], "description": ["ICU stays", "", "Sepsis-3"],
                           "remaining": [100, 80, 30]})
    fig = charts.inclusion_funnel(funnel)
    assert list(fig.data[0].x) == [100, 80, 30]
    assert list(fig.data[0].y) == ["ICU stays", "adult", "Sepsis-3"]  # empty description -> rule name


def test_quarantine_by_rule_one_trace_per_stage() -> None:
    counts = pd.DataFrame({"stage": ["outliers", "outliers", "units"],
                           "rule": ["map_range", "hr_range", "kg"], "rows": [5, 2, 1]})
    fig = charts.quarantine_by_rule(counts)
    assert sorted(t.name for t in fig.data) == ["outliers", "units"]
    outliers = next(t for t in fig.data if t.name == "outliers")
    assert list(outliers.x) == [2, 5]  # sorted ascending within the stage


def test_demographics_histogram_per_group_and_bar_without_age() -> None:
    cohort = pd.DataFrame({"age_years": [40, 50, 60, 70], "gender": ["F", "M", "F", "M"]})
    fig = charts.demographics(cohort, "age_years", "gender")
    assert [t.name for t in fig.data] == ["F", "M"]
    bars = charts.demographics(cohort, None, "gender")
    assert list(bars.data[0].y) == [2, 2]


def test_action_heatmap_shares_sum_to_one_per_panel() -> None:
    clinicians = np.array([0, 0, 6, 24])
    policy = np.array([24, 24, 24, 24])
    fig = charts.action_heatmap(clinicians, policy, (5, 5))
    assert len(fig.data) == 2
    clin, pol = (np.asarray(t.z) for t in fig.data)
    assert clin.shape == (5, 5) and clin.sum() == pytest.approx(1.0)
    assert clin[0, 0] == pytest.approx(0.5)
    assert clin[1, 1] == pytest.approx(0.25)  # action 6 = fluid bin 1, vasopressor bin 1
    assert pol[4, 4] == pytest.approx(1.0)
    assert len(charts.action_heatmap(clinicians, None, (5, 5)).data) == 1


def test_state_timeline_one_panel_per_known_column() -> None:
    stay = pd.DataFrame({"bin_start": pd.date_range("2150-01-01", periods=3, freq="4h"),
                         "map_mmhg": [70.0, 65.0, 72.0], "lactate_mmol_l": [2.0, 3.5, 1.5]})
    fig = charts.state_timeline(stay, ["map_mmhg", "lactate_mmol_l", "not_a_column"])
    assert [t.name for t in fig.data] == ["map_mmhg", "lactate_mmol_l"]
    assert list(fig.data[0].y) == [70.0, 65.0, 72.0]


def test_doses_flags_only_out_of_support_bins() -> None:
    times = pd.date_range("2150-01-01", periods=3, freq="4h")
    doses = pd.DataFrame({
        "bin_start": list(times) * 2,
        "dose": ["IV fluid, mL/4h"] * 3 + ["Vasopressor, norepinephrine-eq mcg/kg/min"] * 3,
        "given": [500.0, 0.0, 250.0, 0.1, 0.2, 0.0],
        "recommended": [250.0, 1000.0, 250.0, 0.0, 0.3, 0.0],
        "out_of_support": [False, True, False, False, True, False],
    })
    fig = charts.doses_given_vs_recommended(doses)
    names = [t.name for t in fig.data]
    assert names.count("given") == 2 and names.count("recommended") == 2
    flags = [t for t in fig.data if t.name == "out of support"]
    assert [list(t.x) for t in flags] == [[times[1]], [times[1]]]
    assert flags[0].y[0] > 1000.0  # drawn above the tallest bar of its panel


def test_action_values_grid_marks_given_and_recommended() -> None:
    q = np.arange(25, dtype=float)
    fig = charts.action_values(q, (5, 5), given_action=7, recommended_action=24)
    assert np.asarray(fig.data[0].z).shape == (5, 5)
    marks = {t.name: (t.x[0], t.y[0]) for t in fig.data[1:]}
    assert marks == {"given": (2, 1), "recommended": (4, 4)}
    flat = charts.action_values(q[:3], (), 0, 2)
    assert list(flat.data[0].y) == [0.0, 1.0, 2.0]


def test_ope_forest_policy_beside_clinicians_with_interval_arms() -> None:
    estimates = pd.DataFrame({"estimator": ["WIS", "DR", "WIS", "DR"],
                              "target": ["discrete_cql", "discrete_cql", "clinicians", "clinicians"],
                              "value": [0.8, 0.7, 0.78, 0.77], "ci_low": [0.75, 0.6, 0.7, 0.7],
                              "ci_high": [0.9, 0.72, 0.8, 0.8]})
    fig = charts.ope_forest(estimates, {"true value": 0.79})
    policy, clinicians = fig.data
    assert (policy.name, clinicians.name) == ("discrete_cql", "clinicians")
    assert list(fig.layout.yaxis.ticktext) == ["DR", "WIS"]  # first estimator on top
    assert policy.y[0] > clinicians.y[0]  # same row, policy drawn just above the clinicians
    assert round(policy.y[0]) == 1 and round(policy.y[1]) == 0
    assert list(np.round(policy.error_x.array, 6)) == [0.1, 0.02]
    assert list(np.round(policy.error_x.arrayminus, 6)) == [0.05, 0.1]
    assert any("true value" in str(a.text) for a in fig.layout.annotations)


def test_calibration_has_diagonal_and_curve() -> None:
    curve = pd.DataFrame({"confidence": [0.2, 0.5, 0.9], "accuracy": [0.1, 0.55, 0.95], "count": [3, 5, 9]})
    fig = charts.calibration(curve)
    assert list(fig.data[0].x) == [0, 1]
    assert list(fig.data[1].y) == [0.1, 0.55, 0.95]


def test_ope_forest_keeps_an_exploding_estimate_off_scale() -> None:
    estimates = pd.DataFrame({"estimator": ["IS", "WIS", "IS", "WIS"],
                              "target": ["cql", "cql", "clinicians", "clinicians"],
                              "value": [269523.0, 15.0, 11.0, 11.0], "ci_low": [0.0, 14.9, 7.0, 7.0],
                              "ci_high": [808570.0, 15.0, 15.0, 15.0]})
    fig = charts.ope_forest(estimates)
    low, high = fig.layout.xaxis.range
    assert 6.0 < low < 7.0 and 15.0 < high < 16.0
    assert "off scale: IS (cql) 2.7e+05" in fig.layout.title.text
    assert charts.ope_forest(estimates[estimates["value"] < 100]).layout.xaxis.range is None
