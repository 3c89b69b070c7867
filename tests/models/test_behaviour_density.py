"""`BehaviourDoseDensity`: a conditional dose density recovers a known hurdle log-normal policy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from dosewise.models.behaviour_density import BehaviourDoseDensity

EDGES = [[0.0, 100.0, 300.0, 800.0], [0.0, 0.05, 0.15, 0.4]]


def _simulate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    p_fluid = 1 / (1 + np.exp(-(0.5 + x[:, 0])))
    p_vaso = 1 / (1 + np.exp(-(-1.0 + x[:, 1])))
    fluid = np.where(rng.random(n) < p_fluid, np.exp(5.5 + 0.5 * x[:, 2] + 0.4 * rng.normal(size=n)), 0.0)
    vaso = np.where(rng.random(n) < p_vaso, np.exp(-2.0 + 0.3 * x[:, 0] + 0.6 * rng.normal(size=n)), 0.0)
    return x, np.column_stack([fluid, vaso])


def test_bin_probabilities_match_the_generating_policy() -> None:
    x, doses = _simulate(6000, 0)
    model = BehaviourDoseDensity(bin_edges=EDGES).fit(x, doses)
    assert model.sigma_ == pytest.approx([0.4, 0.6], abs=0.05)
    x_test, doses_test = _simulate(4000, 1)
    probs = model.action_probabilities(x_test, 25)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    bins = [np.searchsorted(EDGES[j], doses_test[:, j], side="left") for j in range(2)]
    actions = bins[0] * 5 + bins[1]
    # calibrated on average: predicted share of each action vs observed share
    observed = np.bincount(actions, minlength=25) / len(actions)
    np.testing.assert_allclose(probs.mean(axis=0), observed, atol=0.02)


def test_log_density_is_a_point_mass_times_a_log_normal() -> None:
    x, doses = _simulate(3000, 2)
    model = BehaviourDoseDensity(bin_edges=EDGES).fit(x, doses)
    row, dose = x[:1], np.array([[250.0, 0.0]])
    patterns = model.pattern_probabilities(row)
    mu = model.mean_models_[0].predict(row)[0]
    expected = np.log(patterns[0, 1]) + norm.logpdf(np.log(250.0), mu, model.sigma_[0]) - np.log(250.0)
    assert model.log_density(row, dose)[0] == pytest.approx(expected)
