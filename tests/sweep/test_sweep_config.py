"""Sweep configs: the trial grid, and every bad input refused before Ray starts (exit 2)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.app.sweep import (
    SweepConfig,
    TrialRow,
    connect_ray,
    load_sweep_config,
    resolve_trials,
    select_winner,
)
from dosewise.app.sweep.config import SearchSpace, trial_settings
from dosewise.data_schemas import BadInputError

runner = CliRunner()


def test_grid_is_every_combination_times_every_seed() -> None:
    search = SearchSpace(seeds=[0, 1], space={"algorithm.alpha": [0.0, 1.0], "mask.min_count": [1, 5, 20]})
    trials = trial_settings(search)
    assert len(trials) == 12 and trials[0] == {"algorithm.alpha": 0.0, "mask.min_count": 1, "seed": 0}
    space = {"algorithm.learning_rate": {"low": 1e-4, "high": 1e-3, "log": True}}
    random = trial_settings(SearchSpace(kind="random", num_samples=5, space=space))
    assert len(random) == 5 and all(1e-4 <= t["algorithm.learning_rate"] <= 1e-3 for t in random)
    assert random == trial_settings(SearchSpace(kind="random", num_samples=5, space=space))  # seeded draws


def test_shipped_sweep_demo_resolves() -> None:
    base, trials, ope = resolve_trials(load_sweep_config("sweep_demo", []))
    assert len(trials) == 4 and {t.algorithm.alpha for _, t in trials} == {0.0, 1.0}
    assert "WIS" in ope.estimators and base.n_steps == 1500


def test_shipped_sweep_mbp_resolves() -> None:
    config = load_sweep_config("sweep_mbp", [])
    base, trials, ope = resolve_trials(config)
    assert base.algorithm.name == "pessimistic_mbp" and len(trials) == 6
    assert {t.algorithm.min_count for _, t in trials} == {12, 15}
    assert {(t.algorithm.penalty, t.algorithm.gamma) for _, t in trials} == {
        (0.025, 1.0), (0.0375, 1.0), (0.05, 1.0)}
    assert config.selection.min_ess == 5.0
    assert (config.selection.estimator, ope.fqe.method, ope.fqe.fit_split) == ("FQE", "tabular", "same")
    sizes = [round(f * config.data.episodes) for f in config.data.split_fractions]  # as assign_splits rounds
    assert sizes[:2] == [20000, 10000] and config.data.episodes - sum(sizes[:2]) == 5000


def _sweep(tmp_path: Path, *sets: str) -> tuple[int, str]:
    result = runner.invoke(app, ["sweep", "--config", "sweep_demo", "--set", f"out={str(tmp_path / 's')!r}",
                                 *[a for s in sets for a in ("--set", s)]])
    return result.exit_code, result.output


def test_unknown_setting_names_the_key_and_what_is_allowed(tmp_path: Path) -> None:
    code, output = _sweep(tmp_path, "search.space={\"mask.min_cuont\" = [1, 2]}")
    assert code == 2 and "mask.min_cuont" in output and "mask.min_count" in output
    code, output = _sweep(tmp_path, "search.space={\"algorithm.alhpa\" = [0.1]}")
    assert code == 2 and "alhpa" in output
    assert not (tmp_path / "s").exists()


def test_empty_space_and_empty_values(tmp_path: Path) -> None:
    code, output = _sweep(tmp_path, "search.space={}")
    assert code == 2 and "empty space" in output
    code, output = _sweep(tmp_path, "search.space={\"algorithm.alpha\" = []}")
    assert code == 2 and "at least one value" in output


def test_selection_estimator_must_be_computed(tmp_path: Path) -> None:
    code, output = _sweep(tmp_path, "evaluate.settings.estimators=['WIS']")  # sweep_demo selects by FQE
    assert code == 2 and "`selection.estimator` must be one of the estimators" in output
    code, output = _sweep(tmp_path, "evaluate.settings.estimators=['FQE']")
    assert code == 2 and "must have WIS (or IS)" in output
    assert not (tmp_path / "s").exists()


def test_unresponsive_ray_address_fails_in_seconds() -> None:
    start = time.perf_counter()
    with pytest.raises(BadInputError, match="does not answer"):
        connect_ray("ray://127.0.0.1:9", num_cpus=1)
    assert time.perf_counter() - start < 10
    with pytest.raises(BadInputError, match="must be ray://HOST:PORT"):
        connect_ray("ray://nohost", num_cpus=1)


def test_selection_respects_the_ess_floor_and_skips_failures() -> None:
    rows = [TrialRow(0, {}, "finished", score=0.9, ess=10.0),
            TrialRow(1, {}, "finished", score=0.7, ess=80.0), TrialRow(2, {}, "failed"),
            TrialRow(3, {}, "finished", score=0.6, ess=90.0)]
    winner = select_winner(rows, min_ess=50.0)
    assert winner is not None and winner.index == 1
    assert select_winner(rows, min_ess=1000.0) is None
    assert SweepConfig().selection.estimator == "WIS"


def test_fqe_selection_floors_on_the_policys_wis_ess() -> None:
    from types import SimpleNamespace

    from dosewise.app.sweep.trial import pick_estimate, selection_ess
    from dosewise.data_schemas.ope import OpeEstimate

    def estimate(name: str, target: str, ess: float | None) -> OpeEstimate:
        return OpeEstimate(estimator=name, target=target, value=0.8, ci_low=0.7, ci_high=0.9,
                           lower_bound_95=0.72, ess=ess, n_episodes=500)

    report = SimpleNamespace(policy_name="p", estimates=[
        estimate("WIS", "clinicians", 500.0), estimate("WIS", "p", 42.0), estimate("FQE", "p", None)])
    assert selection_ess(report, pick_estimate(report, "FQE")) == 42.0  # the policy's, not the clinicians'
    assert selection_ess(report, pick_estimate(report, "WIS")) == 42.0
    report.estimates = report.estimates[2:]
    assert selection_ess(report, pick_estimate(report, "FQE")) == 0.0  # no weights: never above a floor
