"""`BehaviourPolicyClassifier`: scikit-learn's estimator checks, calibration, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from dosewise.data_schemas import BadInputError
from dosewise.models import BehaviourPolicyClassifier, load_behaviour_model, save_behaviour_model
from dosewise.models.ope.calibration import calibration_metrics


# Every check runs; none is skipped. (`check_array_api_input` skips itself unless SCIPY_ARRAY_API
# is set, which is scikit-learn's own rule for all estimators.)
@parametrize_with_checks([BehaviourPolicyClassifier(max_iter=50)])
def test_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)


def _softmax_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    logits = x @ np.array([[2.0, 0.0, -1.0], [0.0, 1.5, 0.5], [0.0, 0.0, 0.0], [-1.0, 1.0, 0.0]])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1)
    return x, y, p


def test_calibrated_probabilities_match_the_true_ones_out_of_sample() -> None:
    x, y, _ = _softmax_data(3000, 0)
    model = BehaviourPolicyClassifier().fit(x, y)
    x_test, y_test, p_true = _softmax_data(2000, 1)
    proba = model.predict_proba(x_test)
    assert model.calibrated_
    assert np.abs(proba - p_true).mean() < 0.05
    result = calibration_metrics(proba, y_test)
    truth = calibration_metrics(p_true, y_test)
    assert result.ece < 0.05
    assert result.log_loss < truth.log_loss + 0.05


def test_action_probabilities_cover_the_whole_action_space() -> None:
    x, y, _ = _softmax_data(300, 2)
    model = BehaviourPolicyClassifier().fit(x, y + 3)  # actions 3, 4, 5 of 8
    probs = model.action_probabilities(x[:5], n_actions=8)
    assert probs.shape == (5, 8)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert (probs[:, :3] == 0).all()


def test_rare_actions_fall_back_to_the_uncalibrated_model() -> None:
    x, y, _ = _softmax_data(200, 3)
    y[0] = 7  # seen once: fewer samples than calibration folds
    model = BehaviourPolicyClassifier(cv=3).fit(x, y)
    assert not model.calibrated_
    assert "none calibration" in model.describe()


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    x, y, _ = _softmax_data(300, 4)
    model = BehaviourPolicyClassifier().fit(x, y)
    path = save_behaviour_model(model, tmp_path / "behaviour_model.joblib")
    loaded = load_behaviour_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_load_rejects_other_objects(tmp_path: Path) -> None:
    import joblib

    joblib.dump({"not": "a model"}, tmp_path / "x.joblib")
    with pytest.raises(BadInputError, match="not a BehaviourPolicyClassifier"):
        load_behaviour_model(tmp_path / "x.joblib")
    with pytest.raises(BadInputError, match="does not exist"):
        load_behaviour_model(tmp_path / "missing.joblib")
