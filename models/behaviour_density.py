"""The clinicians' dosing as a conditional density p(doses | state), for continuous actions.

A hurdle model in the spirit of two-part dose models (Duan et al. 1983): which doses are zero
(a multinomial logistic model over the zero/non-zero patterns, so "fluids without vasopressors"
keeps its own probability), then each non-zero dose is log-normal with a state-dependent mean
(ridge regression) and a constant spread. Non-zero log doses are independent given the state and
the pattern. Its `action_probabilities` integrates the density over the dataset's dose bins, so it
can stand in for the classifier when the importance weights should come from the dose density;
`log_density`, `window_mass`, `dose_cdf` (for the PIT calibration check) and `sample` serve the
continuous-action estimators (density ratios against a kernel-smoothed target).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import norm
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from dosewise.data_schemas import BadInputError


class BehaviourDoseDensity(BaseEstimator):  # type: ignore[misc]
    """Conditional density of the dose vector given the state (hurdle log-normal).

    Parameters:
        bin_edges: per dose column, the bin edges `[0, q1, ..., q_{k-2}]` of the trajectories
            manifest (bin 0 = zero dose, bin j = (e[j-1], e[j]], last bin above e[-1]).
        alpha: ridge strength of the log-dose means.
        C: inverse L2 strength of the zero-pattern classifier.
    """

    def __init__(
        self, bin_edges: list[list[float]] | None = None, alpha: float = 1.0, C: float = 1.0
    ) -> None:
        self.bin_edges = bin_edges
        self.alpha = alpha
        self.C = C

    def fit(self, X: Any, doses: Any) -> BehaviourDoseDensity:
        """Fit the zero-pattern model and one log-normal per dose column on (state, doses)."""
        X = validate_data(self, X, dtype=np.float64)
        doses = np.asarray(doses, dtype=np.float64).reshape(len(X), -1)
        if not np.all(np.isfinite(doses)) or np.any(doses < 0):
            raise BadInputError("Doses must be finite and non-negative.", "Check the dose columns.")
        positive = doses > 0
        self.n_doses_ = doses.shape[1]
        self.patterns_ = positive @ (1 << np.arange(self.n_doses_))
        self.pattern_classes_ = np.unique(self.patterns_)
        base = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=500))
        self.pattern_model_ = clone(base).fit(X, self.patterns_) if self.pattern_classes_.size > 1 else None
        self.mean_models_: list[Any] = []
        self.sigma_ = np.ones(self.n_doses_)
        for j in range(self.n_doses_):
            rows = positive[:, j]
            if rows.sum() < 2:
                self.mean_models_.append(None)
                continue
            log_dose = np.log(doses[rows, j])
            model = make_pipeline(StandardScaler(), Ridge(alpha=self.alpha)).fit(X[rows], log_dose)
            resid = log_dose - model.predict(X[rows])
            self.sigma_[j] = max(float(resid.std()), 1e-3)
            self.mean_models_.append(model)
        del self.patterns_
        return self

    def pattern_probabilities(self, X: Any) -> np.ndarray:
        """(n, 2**n_doses) probability of each zero/non-zero pattern (bit j set: dose j > 0)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        out = np.zeros((len(X), 1 << self.n_doses_))
        if self.pattern_model_ is None:
            out[:, int(self.pattern_classes_[0])] = 1.0
        else:
            out[:, self.pattern_model_.classes_] = self.pattern_model_.predict_proba(X)
        return out

    def _log_means(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([np.zeros(len(X)) if m is None else m.predict(X) for m in self.mean_models_])

    def log_density(self, X: Any, doses: Any) -> np.ndarray:
        """(n,) log p(doses | state): pattern probability plus log-normal densities of non-zero doses."""
        patterns = self.pattern_probabilities(X)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        doses = np.asarray(doses, dtype=np.float64).reshape(len(X), -1)
        positive = doses > 0
        code = positive @ (1 << np.arange(self.n_doses_))
        logp = np.log(np.maximum(patterns[np.arange(len(X)), code], 1e-300))
        mu = self._log_means(X)
        log_d = np.log(np.where(positive, doses, 1.0))
        dens = norm.logpdf(log_d, mu, self.sigma_) - log_d  # change of variables to the dose scale
        total: np.ndarray = logp + np.where(positive, dens, 0.0).sum(axis=1)
        return total

    def action_probabilities(self, X: Any, n_actions: int) -> np.ndarray:
        """(n, n_actions) probability of each dose bin combination (row-major over the dose
        columns: action = sum_j bin_j * stride_j, as in the manifest's action grid)."""
        if self.bin_edges is None:
            raise BadInputError("This dose density has no bin edges.", "Pass `bin_edges` from the manifest.")
        patterns = self.pattern_probabilities(X)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        mu = self._log_means(X)
        sizes = [len(e) + 1 for e in self.bin_edges]
        if int(np.prod(sizes)) != n_actions or len(sizes) != self.n_doses_:
            raise BadInputError(f"Bin edges give {sizes} bins; the dataset has {n_actions} actions.",
                                "Use the action_bin_edges of the same trajectories manifest.")
        per_dose = []  # (n, k_j) probability of each bin given the dose is non-zero (bin 0 gets 0)
        for j, edges in enumerate(self.bin_edges):
            inner = np.log(np.asarray(edges[1:], dtype=np.float64).clip(min=1e-300))
            cdf = norm.cdf((inner[None, :] - mu[:, [j]]) / self.sigma_[j])
            bounds = np.column_stack([np.zeros(len(X)), cdf, np.ones(len(X))])
            per_dose.append(np.column_stack([np.zeros(len(X)), np.diff(bounds, axis=1)]))
        out = np.zeros((len(X), *sizes))
        for code in range(1 << self.n_doses_):
            block = patterns[:, code].reshape(len(X), *([1] * len(sizes)))
            for j, size in enumerate(sizes):
                part = per_dose[j] if code >> j & 1 else np.eye(1, size).repeat(len(X), axis=0)
                shape = [len(X)] + [size if i == j else 1 for i in range(len(sizes))]
                block = block * part.reshape(shape)
            out += block
        return out.reshape(len(X), n_actions)

    def zero_probabilities(self, X: Any) -> np.ndarray:
        """(n, n_doses) marginal probability that each dose is zero given the state."""
        patterns = self.pattern_probabilities(X)
        bits = (np.arange(patterns.shape[1])[:, None] >> np.arange(self.n_doses_)[None, :]) & 1
        zero: np.ndarray = patterns @ (1 - bits)
        return zero

    def dose_cdf(self, X: Any, doses: Any) -> np.ndarray:
        """(n, n_doses) marginal P(dose_j <= d_j | state): the zero mass plus the log-normal part."""
        zero = self.zero_probabilities(X)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        doses = np.asarray(doses, dtype=np.float64).reshape(len(X), -1)
        mu = self._log_means(X)
        log_d = np.log(np.maximum(doses, 1e-300))
        positive_part = np.where(doses > 0, norm.cdf((log_d - mu) / self.sigma_), 0.0)
        cdf: np.ndarray = np.where(doses < 0, 0.0, zero + (1.0 - zero) * positive_part)
        return cdf

    def window_mass(self, X: Any, doses: Any, half_width: np.ndarray) -> np.ndarray:
        """(n,) behaviour probability of a dose vector within +-half_width per column: the zero
        pattern's point mass for zero doses, the log-normal mass of the window for the others.
        How much the clinicians' density supports a dose; near zero means undefined ratios."""
        patterns = self.pattern_probabilities(X)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        doses = np.asarray(doses, dtype=np.float64).reshape(len(X), -1)
        positive = doses > 0
        code = positive @ (1 << np.arange(self.n_doses_))
        mass = patterns[np.arange(len(X)), code]
        mu = self._log_means(X)
        high = np.log(doses + half_width)
        low = np.log(np.maximum(doses - half_width, 1e-300))
        inside = norm.cdf((high - mu) / self.sigma_) - norm.cdf((low - mu) / self.sigma_)
        total: np.ndarray = mass * np.where(positive, inside, 1.0).prod(axis=1)
        return total

    def sample(self, X: Any, seed: int = 0) -> np.ndarray:
        """(n, n_doses) one dose vector per state drawn from the density (seeded)."""
        rng = np.random.default_rng(seed)
        patterns = self.pattern_probabilities(X)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        cumulative = patterns.cumsum(axis=1)
        code = (rng.random((len(X), 1)) > cumulative).sum(axis=1).clip(max=patterns.shape[1] - 1)
        positive = (code[:, None] >> np.arange(self.n_doses_)[None, :]) & 1 == 1
        draws = np.exp(self._log_means(X) + self.sigma_ * rng.standard_normal((len(X), self.n_doses_)))
        out: np.ndarray = np.where(positive, draws, 0.0)
        return out

    def describe(self) -> str:
        """One line for the report."""
        return f"hurdle log-normal dose density ({self.n_doses_} doses, ridge alpha={self.alpha})"
