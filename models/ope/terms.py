"""Every estimator as a weighted sum of ratios of episode sums: one shape for point values,
the bootstrap and the jackknife.

An estimate is ``sum_k coef[k] * sum_i numer[i, k] / sum_i denom[i, k]``, where ``denom`` is
None for plain means (the denominator is then the number of episodes). IS, PDIS and DR are means;
WIS, PDWIS and WDR are self-normalised ratios. Resampling episodes only reweights the rows, so
2,000 bootstrap replicates are one matrix product (resample counts x per-episode terms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def ratios(numer_sums: np.ndarray, denom_sums: np.ndarray) -> np.ndarray:
    """Element-wise numerator / denominator sums, 0 where the denominator is empty."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.where(denom_sums > 0, numer_sums / denom_sums, 0.0)
    return out


@dataclass(frozen=True)
class RatioTerms:
    """Per-episode terms of one estimator (see the module docstring)."""

    numer: np.ndarray  # (n, K)
    denom: np.ndarray | None  # (n, K) or None for a mean
    coef: np.ndarray  # (K,)

    @property
    def n_episodes(self) -> int:
        return int(self.numer.shape[0])

    def value(self) -> float:
        """The point estimate on all episodes."""
        return float(self.combine(self.numer.sum(axis=0)[None, :], self._denom_sums()[None, :])[0])

    def _denom_sums(self) -> np.ndarray:
        if self.denom is None:
            return np.full(self.numer.shape[1], float(self.n_episodes))
        sums: np.ndarray = self.denom.sum(axis=0)
        return sums

    def combine(self, numer_sums: np.ndarray, denom_sums: np.ndarray) -> np.ndarray:
        """(B,) estimates from (B, K) numerator and denominator sums; empty denominators give 0."""
        combined: np.ndarray = ratios(numer_sums, denom_sums) @ self.coef
        return combined

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        """(B,) estimates on bootstrap resamples given as (B, n) episode counts."""
        numer_sums = counts @ self.numer
        if self.denom is None:
            denom_sums = np.broadcast_to(counts.sum(axis=1, keepdims=True), numer_sums.shape)
        else:
            denom_sums = counts @ self.denom
        return self.combine(numer_sums, denom_sums)

    def jackknife(self) -> np.ndarray:
        """(n,) leave-one-episode-out estimates, in closed form (for the BCa acceleration)."""
        total_n = self.numer.sum(axis=0)[None, :]
        numer_loo = total_n - self.numer
        if self.denom is None:
            denom_loo = np.full_like(numer_loo, float(self.n_episodes - 1))
        else:
            denom_loo = self.denom.sum(axis=0)[None, :] - self.denom
        return self.combine(numer_loo, denom_loo)

    def weight_sum_zero(self) -> bool:
        """True when a self-normalised estimator has no weight at all (undefined value)."""
        return self.denom is not None and bool(np.all(self.denom.sum(axis=0) <= 0))
