"""ICU-Sepsis MDP: exact values match the published references; episodes follow the contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import BadInputError, read_trajectories
from dosewise.data_schemas import columns as c
from dosewise.pipelines import (
    behaviour_policy_matrix,
    exact_policy_value,
    exact_q_values,
    exact_state_values,
    load_icu_sepsis_mdp,
    optimal_policy,
    support_value_bounds,
    write_icu_sepsis_episodes,
)


def test_reference_values_from_stack_notes() -> None:
    mdp = load_icu_sepsis_mdp()
    assert exact_policy_value(mdp.clinician_policy) == pytest.approx(0.782, abs=5e-4)
    assert exact_policy_value(behaviour_policy_matrix("random")) == pytest.approx(0.780, abs=5e-4)
    assert exact_policy_value(optimal_policy()) == pytest.approx(0.875, abs=5e-4)


def test_optimal_policy_is_greedy_in_its_own_q_values() -> None:
    policy = optimal_policy()
    q = exact_q_values(policy)
    idx = load_icu_sepsis_mdp().non_terminal
    chosen = q[idx, policy[idx].argmax(axis=1)]
    assert np.all(chosen >= q[idx].max(axis=1) - 1e-9)


def test_bellman_consistency() -> None:
    probs = behaviour_policy_matrix("epsilon:0.3")
    v = exact_state_values(probs)
    q = exact_q_values(probs)
    idx = load_icu_sepsis_mdp().non_terminal
    np.testing.assert_allclose((probs * q).sum(axis=1)[idx], v[idx], atol=1e-10)


def test_episodes_are_a_valid_trajectories_folder(tmp_path: Path) -> None:
    manifest = write_icu_sepsis_episodes(tmp_path, 3000, behaviour="clinician", seed=1)
    frame, back = read_trajectories(tmp_path)
    assert back.dataset is not None and back.dataset.has_behaviour_prob
    assert frame[c.EPISODE_ID].nunique() == 3000
    returns = frame.groupby(c.EPISODE_ID)[c.REWARD].sum()
    # Monte-Carlo survival within 4 standard errors of the exact clinicians' value
    exact = manifest.extra["exact_behaviour_value"]
    assert abs(returns.mean() - exact) < 4 * np.sqrt(exact * (1 - exact) / 3000)
    mdp = load_icu_sepsis_mdp()
    logged = mdp.clinician_policy[frame[c.MDP_STATE], frame[c.ACTION]]
    np.testing.assert_allclose(frame[c.BEHAVIOUR_PROB], logged)
    np.testing.assert_allclose(frame[back.dataset.state_columns].to_numpy(),
                               mdp.state_features[frame[c.MDP_STATE]])
    assert set(frame[c.SPLIT]) == {"train", "validation", "test"}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    write_icu_sepsis_episodes(tmp_path / "a", 200, seed=7)
    write_icu_sepsis_episodes(tmp_path / "b", 200, seed=7)
    write_icu_sepsis_episodes(tmp_path / "c", 200, seed=8)
    a = (tmp_path / "a" / "trajectories.parquet").read_bytes()
    assert a == (tmp_path / "b" / "trajectories.parquet").read_bytes()
    assert a != (tmp_path / "c" / "trajectories.parquet").read_bytes()


def test_cli_and_bad_behaviour(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["synth", "icu-sepsis", "--episodes", "50", "--out", str(tmp_path / "s")])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "s" / "manifest.json").is_file()
    bad = runner.invoke(app, ["synth", "icu-sepsis", "--episodes", "5", "--behaviour", "epsilon:2",
                              "--out", str(tmp_path / "t")])
    assert bad.exit_code == 2 and "epsilon:E" in bad.output
    assert not (tmp_path / "t" / "manifest.json").exists()


def test_support_bounds_collapse_inside_the_support_and_open_outside() -> None:
    mdp = load_icu_sepsis_mdp()
    clinician = behaviour_policy_matrix("clinician", mdp)
    # inside the clinicians' support the data identify the value exactly
    inside = clinician * np.random.default_rng(0).uniform(0.5, 2.0, clinician.shape)
    inside /= inside.sum(axis=1, keepdims=True)
    lo, hi = support_value_bounds(inside, clinician, mdp)
    assert lo == pytest.approx(exact_policy_value(inside, mdp), abs=1e-9) == pytest.approx(hi, abs=1e-9)
    # a near-greedy optimal policy puts mass where clinicians never act: the data cannot pin it down
    target = 0.9 * optimal_policy() + 0.1 / mdp.n_actions
    lo, hi = support_value_bounds(target, clinician, mdp)
    assert lo < exact_policy_value(target, mdp) < hi
    assert hi - lo > 0.2
    # with full support (epsilon logging) the same target is identified again
    lo, hi = support_value_bounds(target, behaviour_policy_matrix("epsilon:0.1", mdp), mdp)
    assert hi - lo == pytest.approx(0.0, abs=1e-9)


def test_support_bounds_hold_for_random_policies() -> None:
    mdp = load_icu_sepsis_mdp()
    clinician = behaviour_policy_matrix("clinician", mdp)
    rng = np.random.default_rng(1)
    for _ in range(3):
        policy = rng.dirichlet(np.full(mdp.n_actions, 0.3), size=mdp.n_states)
        lo, hi = support_value_bounds(policy, clinician, mdp)
        assert 0.0 <= lo <= exact_policy_value(policy, mdp) <= hi <= 1.0


def test_support_bounds_refuse_a_wrong_behaviour_shape() -> None:
    with pytest.raises(BadInputError, match="shape"):
        support_value_bounds(optimal_policy(), np.ones((3, 25)))
