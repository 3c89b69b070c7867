"""The clinicians' (behaviour) policy as a calibrated scikit-learn classifier: state -> P(action).

Importance weights divide by these probabilities, so they must be calibrated, not just accurate
(Raghu et al. 2018, "Behaviour policy estimation in off-policy policy evaluation"). The base
model is standardised multinomial logistic regression or histogram gradient boosting, wrapped in
`CalibratedClassifierCV` (temperature scaling by default, Guo et al. 2017).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from dosewise.data_schemas import BadInputError, write_bytes_atomic

BASE_MODELS = ("logistic", "hist_gradient_boosting")
CALIBRATION_METHODS = ("temperature", "sigmoid", "isotonic", "none")


class BehaviourPolicyClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Calibrated estimate of the clinicians' action probabilities given the state.

    Parameters:
        base: `logistic` (standardised multinomial logistic regression) or
            `hist_gradient_boosting`.
        calibration: `temperature`, `sigmoid`, `isotonic` or `none`.
        cv: folds for `CalibratedClassifierCV`; classes with fewer samples than folds make the
            calibration fall back to the uncalibrated base model (recorded in `calibrated_`).
        max_iter: iterations of the base model.
        C: inverse L2 strength of the logistic model.
        random_state: seed of the base model and of the calibration folds.
    """

    def __init__(
        self,
        base: str = "logistic",
        calibration: str = "temperature",
        cv: int = 3,
        max_iter: int = 200,
        C: float = 1.0,
        random_state: int | None = 0,
    ) -> None:
        self.base = base
        self.calibration = calibration
        self.cv = cv
        self.max_iter = max_iter
        self.C = C
        self.random_state = random_state

    def _base_model(self) -> Pipeline:
        if self.base == "logistic":
            model: Any = LogisticRegression(C=self.C, max_iter=self.max_iter)
        elif self.base == "hist_gradient_boosting":
            model = HistGradientBoostingClassifier(
                max_iter=self.max_iter, early_stopping=False, random_state=self.random_state
            )
        else:
            raise ValueError(f"`base` must be one of {BASE_MODELS}. Got {self.base!r}.")
        return make_pipeline(StandardScaler(), model)

    def fit(self, X: Any, y: Any) -> BehaviourPolicyClassifier:
        """Fit the base model and its probability calibration on (state, logged action) pairs."""
        if self.calibration not in CALIBRATION_METHODS:
            raise ValueError(
                f"`calibration` must be one of {CALIBRATION_METHODS}. Got {self.calibration!r}."
            )
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, y_codes = np.unique(y, return_inverse=True)
        base = self._base_model()
        if self.classes_.size == 1:
            self.model_ = None  # one action only: probability 1 (scikit-learn's one-label case)
            self.calibrated_ = False
            self.n_iter_ = 0
            return self
        counts = np.bincount(y_codes)
        self.calibrated_ = self.calibration != "none" and int(counts.min()) >= self.cv >= 2
        if self.calibrated_:
            from sklearn.model_selection import StratifiedKFold

            folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
            self.model_ = CalibratedClassifierCV(base, method=self.calibration, cv=folds)
        else:
            self.model_ = clone(base)
        self.model_.fit(X, y_codes)
        self.n_iter_ = _iterations(self.model_)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n, n_classes) probabilities of each class in `classes_` order."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if self.model_ is None:
            return np.ones((X.shape[0], 1))
        proba = np.zeros((X.shape[0], self.classes_.size))
        proba[:, self.model_.classes_] = self.model_.predict_proba(X)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """The most likely logged action."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])

    def action_probabilities(self, X: Any, n_actions: int) -> np.ndarray:
        """(n, n_actions) probabilities over the whole action space; unseen actions get 0."""
        proba = self.predict_proba(X)
        out = np.zeros((proba.shape[0], n_actions))
        out[:, self.classes_.astype(np.int64)] = proba
        return out

    def describe(self) -> str:
        """One line for the report: base model and calibration actually used."""
        calibration = self.calibration if getattr(self, "calibrated_", False) else "none"
        return f"{self.base} + {calibration} calibration (cv={self.cv})"

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True  # calibrated probabilities, not accuracy, matter
        return tags


def _iterations(model: Any) -> int:
    """Iterations the base model ran (the largest over the calibration folds)."""
    fitted = [c.estimator for c in getattr(model, "calibrated_classifiers_", [])] or [model]
    return max(int(np.max(getattr(pipe[-1], "n_iter_", 0))) for pipe in fitted)


def save_behaviour_model(model: Any, path: Path) -> Path:
    """Write a fitted behaviour model with joblib (atomically)."""
    check_is_fitted(model)
    return write_bytes_atomic(Path(path), lambda handle: joblib.dump(model, handle))


def load_behaviour_model(path: Path | str) -> Any:
    """Load a behaviour model written by `save_behaviour_model` (joblib; trusted files only):
    a `BehaviourPolicyClassifier` or a `BehaviourDoseDensity`."""
    from .behaviour_density import BehaviourDoseDensity

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"Behaviour model {path} does not exist.",
                            "Pass the behaviour_model.joblib written by `dosewise evaluate`.")
    model = joblib.load(path)
    if not isinstance(model, BehaviourPolicyClassifier | BehaviourDoseDensity):
        raise BadInputError(f"{path} holds a {type(model).__name__}, not a BehaviourPolicyClassifier.",
                            "Pass the behaviour_model.joblib written by `dosewise evaluate`.")
    return model
