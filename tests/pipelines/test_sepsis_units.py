"""Unit tests: cohort edge cases on hand-written stays, binning conserves fluid, imputation, action bins."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dosewise.pipelines.cleaning.imputation import FILLED, HELD, MEASURED, sample_and_hold
from dosewise.pipelines.sepsis.actions import discretize_doses, fit_dose_edges
from dosewise.pipelines.sepsis.cohort import select_sepsis3_cohort
from dosewise.pipelines.sepsis.config import InclusionConfig
from dosewise.pipelines.sepsis.doses import bin_doses

T0 = pd.Timestamp("2150-01-01 08:00")


def _stays() -> pd.DataFrame:
    """Five stays: septic adult, child, second stay of patient 1, no infection, death inside the window."""
    h = pd.Timedelta(hours=1)
    rows = [
        # stay, subject, age, seq, deathtime, hospital flag
        (1, 1, 60.0, 1, pd.NaT, 0),
        (2, 2, 15.0, 1, pd.NaT, 0),
        (3, 1, 60.0, 2, pd.NaT, 0),
        (4, 4, 70.0, 1, pd.NaT, 0),
        (5, 5, 80.0, 1, T0 + 30 * h, 1),
    ]
    frame = pd.DataFrame(
        rows, columns=["stay_id", "subject_id", "age_years", "stay_seq", "deathtime", "hospital_expire_flag"]
    )
    frame["hadm_id"] = frame["stay_id"]
    frame["intime"], frame["outtime"] = T0, T0 + 96 * h
    frame["dod"] = frame["deathtime"].dt.normalize()
    frame["gender"], frame["care_system"], frame["weight_source"] = "F", "metavision", "charted_first"
    return frame


def _sepsis() -> pd.DataFrame:
    onset = T0 + pd.Timedelta(hours=2)
    return pd.DataFrame(
        {
            "stay_id": [1, 2, 3, 5],
            "suspected_infection_time": onset,
            "sofa_score": [4, 5, 3, 6],
            "sofa_time": onset,
            "sepsis3": True,
            "onset_time": onset,
        }
    )


def test_cohort_rules_and_funnel() -> None:
    result = select_sepsis3_cohort(_stays(), _sepsis(), InclusionConfig(), bin_hours=4)
    assert result.cohort["stay_id"].tolist() == [1, 5]
    clinical = [s for s in result.funnel if not s.rule.endswith(("_code", "_plausible"))]
    assert [(s.rule, s.remaining) for s in clinical][:4] == [
        ("icu_stays", 5),
        ("adult", 4),
        ("first_icu_stay", 3),
        ("suspected_infection", 2),
    ]
    assert dict(zip(result.excluded["stay_id"], result.excluded["rule"], strict=True)) == {
        2: "adult",
        3: "first_icu_stay",
        4: "suspected_infection",
    }  # the stay id travels in its own column; the writer replaces it by the run's pseudonym
    stay = result.cohort.set_index("stay_id")
    assert stay.loc[1, "window_start"] == T0  # clipped to ICU admission (onset - 24 h is earlier)
    assert stay.loc[1, "end_reason"] == "timeout" and stay.loc[1, "n_bins"] == 13  # 50 h / 4 h
    assert stay.loc[5, "end_reason"] == "death" and stay.loc[5, "n_bins"] == 8  # died at 30 h
    assert bool(stay.loc[5, "died_in_hospital"]) and bool(stay.loc[5, "died_90d"])


def test_cohort_rules_are_configurable() -> None:
    cfg = InclusionConfig(min_age_years=10, first_icu_stay_only=False, hours_after_onset=12)
    result = select_sepsis3_cohort(_stays(), _sepsis(), cfg, bin_hours=4)
    assert result.cohort["stay_id"].tolist() == [1, 2, 3, 5]
    assert (result.cohort["n_bins"] == 4).all()  # 2 h before onset (clipped) + 12 h after = 14 h


intervals = st.lists(
    st.tuples(st.floats(0, 70), st.floats(0, 30), st.floats(0, 2000)), min_size=1, max_size=25
)


@settings(max_examples=60, deadline=None)
@given(rows=intervals, bin_hours=st.integers(1, 24))
def test_binning_conserves_fluid_volume(rows: list[tuple[float, float, float]], bin_hours: int) -> None:
    """Every mL given inside the window lands in exactly one bin (split by time overlap)."""
    window_h = 48.0
    doses = pd.DataFrame(
        {
            "kind": "fluid",
            "stay_id": 1,
            "starttime": [T0 + pd.Timedelta(hours=s) for s, _, _ in rows],
            "endtime": [T0 + pd.Timedelta(hours=s + d) for s, d, _ in rows],
            "quantity": [q for _, _, q in rows],
        }
    )
    doses["starttime"] = doses["starttime"].dt.floor("s")
    doses["endtime"] = doses["endtime"].dt.floor("s")
    n_bins = int(np.ceil(window_h / bin_hours))
    windows = pd.DataFrame(
        {
            "stay_id": [1],
            "window_start": [T0],
            "window_end": [T0 + pd.Timedelta(hours=window_h)],
            "n_bins": [n_bins],
        }
    )
    con = duckdb.connect()
    con.register("cohort_windows", windows)
    inside = doses[
        (doses["starttime"] < windows["window_end"][0])
        & ((doses["endtime"] > T0) | ((doses["endtime"] == doses["starttime"]) & (doses["starttime"] >= T0)))
    ]
    con.register("kept_doses", inside.assign(quantity_raw=inside["quantity"]))
    binned = bin_doses(con, bin_hours)
    start = (inside["starttime"] - T0).dt.total_seconds()
    end = (inside["endtime"] - T0).dt.total_seconds()
    span = (end - start).to_numpy()
    overlap = np.clip(np.minimum(end, window_h * 3600) - np.maximum(start, 0), 0, None).to_numpy()
    frac = np.where(span > 0, overlap / np.where(span > 0, span, 1), 1.0)
    expected = float((inside["quantity"].to_numpy() * frac).sum())
    assert binned["fluid_ml"].sum() == pytest.approx(expected, rel=1e-9, abs=1e-3)  # exact to 1 µL (DECIMAL)
    assert binned["bin"].between(0, n_bins - 1).all() and binned["bin"].is_unique


def test_vasopressor_rate_is_time_weighted_per_bin() -> None:
    doses = pd.DataFrame(
        {
            "kind": ["vaso"],
            "stay_id": [1],
            "starttime": [T0 + pd.Timedelta(hours=2)],
            "endtime": [T0 + pd.Timedelta(hours=6)],
            "quantity": [0.2],
        }
    )
    windows = pd.DataFrame(
        {"stay_id": [1], "window_start": [T0], "window_end": [T0 + pd.Timedelta(hours=8)], "n_bins": [2]}
    )
    con = duckdb.connect()
    con.register("kept_doses", doses.assign(quantity_raw=doses["quantity"]))
    con.register("cohort_windows", windows)
    binned = bin_doses(con, 4)
    assert binned["norepi_eq_mcg_kg_min"].tolist() == pytest.approx([0.1, 0.1])  # half of each 4 h bin


def test_sample_and_hold_respects_the_limit() -> None:
    grid = pd.DataFrame({"stay_id": [1] * 5 + [2], "x": [1.0, np.nan, np.nan, np.nan, 5.0, np.nan]})
    held, mask = sample_and_hold(grid, ["x"], {"x": 2}, group="stay_id")
    assert held["x"].tolist()[:3] == [1.0, 1.0, 1.0] and np.isnan(held["x"][3]) and held["x"][4] == 5.0
    assert mask["x"].tolist()[:5] == [MEASURED, HELD, HELD, -1, MEASURED]
    assert np.isnan(held["x"][5])  # never carried into another stay
    assert FILLED == 2


def test_action_edges_zero_bin_and_quartiles() -> None:
    doses = pd.Series([0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    edges = fit_dose_edges(doses, 5)
    assert edges[0] == 0.0 and edges == sorted(edges) and len(edges) == 4
    bins = discretize_doses(doses, edges)
    assert bins[:2].tolist() == [0, 0] and bins.max() == 4 and bins.min() == 0
    assert fit_dose_edges(pd.Series([0.0, 0.0]), 5) == [0.0, 0.0, 0.0, 0.0]
