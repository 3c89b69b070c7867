"""OPE checked against exact values: ICU-Sepsis episodes, targets whose true value the MDP gives.

Small scale (2,000 episodes, 300 in the test split); `bench/ope_coverage.py` runs the full scale.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dosewise.data_schemas import read_trajectories
from dosewise.data_schemas.ope import TABULAR_FQE_SHOWN_SHARE, OpeReport
from dosewise.models import OpeConfig, evaluate_policy, load_behaviour_model
from dosewise.models.ope.bootstrap import bootstrap_intervals
from dosewise.models.ope.diagnostics import kish_ess
from dosewise.models.ope.episodes import episode_layout, sort_episodes
from dosewise.models.ope.importance_sampling import importance_weights, is_terms, pdwis_terms, wis_terms
from dosewise.pipelines import (
    exact_policy_value,
    load_icu_sepsis_mdp,
    optimal_policy,
    write_icu_sepsis_episodes,
)
from tests.models.ope.tabular_policy import TabularPolicy

N_ACTIONS = 25


@pytest.fixture(scope="module")
def sepsis_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("icu_sepsis")
    write_icu_sepsis_episodes(folder, 2000, behaviour="clinician", seed=3)
    return folder


def _targets() -> dict[str, np.ndarray]:
    mdp = load_icu_sepsis_mdp()
    return {
        "optimal": 0.9 * optimal_policy() + 0.1 / N_ACTIONS,
        "random": np.full((mdp.n_states, N_ACTIONS), 1.0 / N_ACTIONS),
        "clinicians": mdp.clinician_policy,
    }


@pytest.mark.parametrize("target", ["optimal", "random", "clinicians"])
def test_wis_interval_covers_the_exact_value(sepsis_dir: Path, target: str) -> None:
    table = _targets()[target]
    truth = exact_policy_value(table)
    frame, _ = read_trajectories(sepsis_dir, split="test")
    frame = sort_episodes(frame)
    layout = episode_layout(frame)
    states, actions = frame["mdp_state"].to_numpy(), frame["action"].to_numpy()
    weights = importance_weights(layout.pad(table[states, actions], 1.0),
                                 layout.pad(frame["behaviour_prob"].to_numpy(), 1.0), layout.mask)
    rewards = layout.pad(frame["reward"].to_numpy(), 0.0)
    terms = {"WIS": wis_terms(weights, rewards, 1.0), "IS": is_terms(weights, rewards, 1.0),
             "PDWIS": pdwis_terms(weights, rewards, 1.0)}
    results = bootstrap_intervals(terms, n_resamples=1000, seed=0)
    assert results["WIS"].ci_low <= truth <= results["WIS"].ci_high
    returns = rewards.sum(axis=1)
    assert returns.min() <= results["WIS"].value <= returns.max()
    assert kish_ess(weights.trajectory) <= layout.n_episodes
    if target == "clinicians":  # on-policy: every estimator is the mean return and covers the truth
        for name in ("IS", "PDWIS"):
            assert results[name].value == pytest.approx(returns.mean())
            assert results[name].ci_low <= truth <= results[name].ci_high


@pytest.fixture(scope="module")
def optimal_report(sepsis_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[OpeReport, Path]:
    out = tmp_path_factory.mktemp("ope_optimal")
    config = OpeConfig.model_validate({"epsilon": 0.1, "n_bootstrap": 400,
                                       "fqe": {"method": "neural", "n_steps": 400, "hidden_units": [64, 64],
                                               "bootstrap_refits": 0}})
    policy = TabularPolicy("optimal", optimal_policy())
    return evaluate_policy(sepsis_dir, policy, config, split="test", out_dir=out, show_progress=False), out


def test_report_covers_truth_and_is_complete(optimal_report: tuple[OpeReport, Path]) -> None:
    report, out = optimal_report
    truth = exact_policy_value(0.9 * optimal_policy() + 0.1 / N_ACTIONS)
    wis = report.estimate("WIS", "optimal")
    assert wis.ci_low <= truth <= wis.ci_high
    assert {e.estimator for e in report.estimates} == {"IS", "WIS", "PDIS", "PDWIS", "DR", "WDR", "FQE"}
    assert {e.target for e in report.estimates} == {"optimal", "clinicians"}
    for item in report.estimates:
        assert item.ess is None or item.ess <= item.n_episodes + 1e-9
        assert item.ci_low <= item.ci_high
    assert report.behaviour.source == "logged_behaviour_prob"
    assert report.n_episodes == 300
    frame = report.estimates_frame()  # validated by OpeEstimateSchema
    assert len(frame) == 14
    stored = OpeReport.model_validate_json((out / "ope_report.json").read_text())
    assert stored.estimates == report.estimates
    for name in ("ope_forest.png", "ope_weights.png", "action_heatmap.png", "behaviour_calibration.png",
                 "ope_estimates.parquet", "manifest.json"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "manifest.json").read_text())["kind"] == "ope_report"


def test_clinicians_are_evaluated_on_policy(optimal_report: tuple[OpeReport, Path], sepsis_dir: Path) -> None:
    report, _ = optimal_report
    frame, _ = read_trajectories(sepsis_dir, split="test")
    mean_return = frame.groupby("episode_id")["reward"].sum().mean()
    for name in ("IS", "WIS", "PDIS", "PDWIS"):
        estimate = report.estimate(name, "clinicians")
        assert estimate.value == pytest.approx(mean_return)
        assert estimate.ess == pytest.approx(report.n_episodes)
    truth = exact_policy_value(load_icu_sepsis_mdp().clinician_policy)
    wis = report.estimate("WIS", "clinicians")
    assert wis.ci_low <= truth <= wis.ci_high


def test_support_flags_and_behaviour_model_are_written(optimal_report: tuple[OpeReport, Path]) -> None:
    report, out = optimal_report
    flags = pd.read_parquet(out / "support_flags.parquet")
    assert list(flags.columns) == ["episode_id", "step", "recommended_action", "behaviour_prob_recommended",
                                   "out_of_support"]
    assert len(flags) == report.n_steps
    assert flags["out_of_support"].mean() == pytest.approx(report.support.share_steps_out_of_support)
    assert (flags["out_of_support"] == (flags["behaviour_prob_recommended"] < 0.01)).all()
    model = load_behaviour_model(out / "behaviour_model.joblib")
    assert model.classes_.size > 1
    assert report.behaviour.heldout_ece < 0.1


def test_same_config_and_seed_give_the_same_estimates(sepsis_dir: Path, tmp_path: Path,
                                                     optimal_report: tuple[OpeReport, Path]) -> None:
    config = OpeConfig.model_validate({"epsilon": 0.1, "n_bootstrap": 400,
                                       "fqe": {"method": "neural", "n_steps": 400, "hidden_units": [64, 64],
                                               "bootstrap_refits": 0}})
    again = evaluate_policy(sepsis_dir, TabularPolicy("optimal", optimal_policy()), config, split="test",
                            out_dir=tmp_path, show_progress=False)
    assert again.estimates == optimal_report[0].estimates


def test_fqe_refits_widen_the_fqe_interval_only(sepsis_dir: Path, tmp_path: Path,
                                                optimal_report: tuple[OpeReport, Path]) -> None:
    config = OpeConfig.model_validate({"epsilon": 0.1, "n_bootstrap": 400, "fqe": {
        "method": "neural", "n_steps": 400, "hidden_units": [64, 64], "bootstrap_refits": 3}})
    refitted = evaluate_policy(sepsis_dir, TabularPolicy("optimal", optimal_policy()), config, split="test",
                               out_dir=tmp_path, show_progress=False)
    plain = {(e.estimator, e.target): e for e in optimal_report[0].estimates}
    assert refitted.bootstrap.fqe_refits == 3 and "3 FQE refits" in refitted.bootstrap.fqe_note
    assert refitted.bootstrap.fqe_method == "neural" and refitted.fqe_support == []
    for item in refitted.estimates:
        before = plain[(item.estimator, item.target)]
        assert item.value == before.value  # the main fit is the same; refits only widen FQE's interval
        if item.estimator == "FQE":
            assert item.refit_sd is not None and item.refit_sd > 0
            assert item.ci_low < before.ci_low and item.ci_high > before.ci_high
            assert item.lower_bound_95 < before.lower_bound_95
        else:
            assert item.refit_sd is None
            assert (item.ci_low, item.ci_high) == (before.ci_low, before.ci_high)


def test_report_bounds_the_value_where_the_policy_leaves_the_support(
    optimal_report: tuple[OpeReport, Path],
) -> None:
    report, out = optimal_report
    bounds = {b.target: b for b in report.support_bounds}
    assert set(bounds) == {"optimal"}  # the clinicians are the behaviour policy: identified
    optimal = bounds["optimal"]
    truth = exact_policy_value(0.9 * optimal_policy() + 0.1 / N_ACTIONS)
    assert optimal.ci_low <= truth <= optimal.ci_high
    assert (optimal.return_low, optimal.return_high, optimal.return_range_source) == (0.0, 1.0, "observed")
    assert optimal.share_leaving_support is not None and optimal.share_leaving_support > 0.2
    assert optimal.ci_low <= optimal.value_low < optimal.value_high <= optimal.ci_high
    wis = report.estimate("WIS", "optimal")
    warned = any(w.startswith("optimal: about") and "data allow any value" in w for w in report.warnings)
    assert warned == (optimal.value_high - optimal.value_low > wis.ci_high - wis.ci_low)
    stored = OpeReport.model_validate_json((out / "ope_report.json").read_text())
    assert stored.support_bounds == report.support_bounds


def test_a_configured_return_range_is_used_and_recorded(sepsis_dir: Path, tmp_path: Path) -> None:
    config = OpeConfig.model_validate({"epsilon": 0.1, "n_bootstrap": 100, "value_range": [-1.0, 2.0],
                                       "estimators": ["WIS"], "fqe": {"enabled": False}})
    report = evaluate_policy(sepsis_dir, TabularPolicy("optimal", optimal_policy()), config, split="test",
                             out_dir=tmp_path, show_progress=False)
    bounds = report.support_bounds[0]
    assert (bounds.return_low, bounds.return_high, bounds.return_range_source) == (-1.0, 2.0, "configured")
    share = bounds.share_leaving_support
    assert share is not None and bounds.value_high - bounds.value_low == pytest.approx(3.0 * share)


def test_auto_fqe_is_tabular_on_icu_sepsis_and_its_interval_covers(sepsis_dir: Path, tmp_path: Path) -> None:
    """ICU-Sepsis states repeat (716 of them): `fqe.method = auto` solves FQE in closed form with refits,
    and the FQE interval is one the report may call reliable (bench/ope_coverage.py --fqe-intervals)."""
    config = OpeConfig.model_validate({"epsilon": 0.1, "n_bootstrap": 200, "fqe": {"tabular_refits": 20},
                                       "behaviour": {"max_fit_rows": 3000, "cv": 2}})
    report = evaluate_policy(sepsis_dir, TabularPolicy("optimal", optimal_policy()), config, split="test",
                             out_dir=tmp_path, show_progress=False)
    assert report.bootstrap.fqe_method == "tabular" and report.bootstrap.fqe_refits == 20
    assert "fqe.method = auto" in report.bootstrap.fqe_note and "20 closed-form" in report.bootstrap.fqe_note
    support = {s.target: s for s in report.fqe_support}
    assert set(support) == {"optimal", "clinicians"} and support["optimal"].n_states <= 716
    assert 0 < support["clinicians"].never_logged_share < support["optimal"].never_logged_share < 1
    exact = {"optimal": exact_policy_value(0.9 * optimal_policy() + 0.1 / N_ACTIONS),
             "clinicians": exact_policy_value(load_icu_sepsis_mdp().clinician_policy)}
    for target, truth in exact.items():
        fqe = report.estimate("FQE", target)
        assert fqe.ci_low <= truth <= fqe.ci_high, target
        assert fqe.ci_high - fqe.ci_low < 0.2
    for target, item in support.items():  # reliable only within the never-logged share the bench showed
        note = report.reliability(report.estimate("FQE", target)) or ""
        assert ("pairs the fit data never log" in note) == (item.never_logged_share > TABULAR_FQE_SHOWN_SHARE)
    stored = OpeReport.model_validate_json((tmp_path / "ope_report.json").read_text())
    assert stored.fqe_support == report.fqe_support
