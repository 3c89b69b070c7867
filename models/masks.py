"""Admissible-action masks: which actions a policy may pick in a state.

d3rlpy has no action masking (takuseno/d3rlpy#356), so Dosewise adds it in two places:
* when recommending, `PolicyNetwork` sets the Q-values of disallowed actions to -inf before argmax;
* in the bootstrap target of the discrete algorithms, `masked_algos` subclasses d3rlpy's
  algorithms (the reason is written there): their target-action choice (DQN: max over the target
  network; Double DQN, discrete CQL and BCQ: argmax of the online network) is the same argmax
  restricted to the next state's allowed actions, so the learned values never bootstrap from
  actions the policy may not take.
A mask is a lookup: state -> nearest cluster centre (in scaled feature space) -> allowed row.
For continuous policies it can also hold, per cluster, doses the clinicians gave there
(`mask.dose_candidates` quantiles, or one median per allowed bin with `mask.dose_candidate_rule =
"bin_medians"`): the policy then recommends one of those (`CandidateDoses`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from dosewise.data_schemas import ConfigError

from .config import MaskConfig


@dataclass(frozen=True)
class AdmissibleActions:
    """Cluster centres (scaled features) and the allowed actions of each cluster."""

    centres: np.ndarray  # (k, d) float32
    allowed: np.ndarray  # (k, n_actions) bool
    doses: np.ndarray | None = None  # (k, m, n_doses) float32 candidate doses, unit scale [-1, 1]

    def nearest(self, scaled: np.ndarray) -> np.ndarray:
        """(n,) index of each (scaled) state's nearest cluster centre."""
        d2 = (scaled**2).sum(1)[:, None] - 2.0 * scaled @ self.centres.T + (self.centres**2).sum(1)[None]
        out: np.ndarray = np.argmin(d2, axis=1)
        return out

    def for_states(self, scaled: np.ndarray) -> np.ndarray:
        """(n, n_actions) bool: the allowed actions of each (scaled) state's nearest cluster."""
        allowed: np.ndarray = self.allowed[self.nearest(scaled)]
        return allowed

    def write(self, handle: IO[bytes]) -> None:
        """Write the arrays to one `.npz` file handle."""
        if self.doses is None:
            np.savez(handle, centres=self.centres, allowed=self.allowed)
        else:
            np.savez(handle, centres=self.centres, allowed=self.allowed, doses=self.doses)

    @classmethod
    def load(cls, path: Path) -> AdmissibleActions:
        """Read a mask written by `save`."""
        with np.load(path) as data:
            doses = data["doses"].astype(np.float32) if "doses" in data.files else None
            return cls(data["centres"].astype(np.float32), data["allowed"].astype(bool), doses)


def with_dose_candidates(
    mask: AdmissibleActions, scaled_states: np.ndarray, unit_doses: np.ndarray, n: int, seed: int
) -> AdmissibleActions:
    """`mask` plus, per cluster, `n` doses logged in it (unit scale): for one dose column the
    inverted-CDF quantiles at levels (j + 0.5) / n (each a dose given, where the cluster's mass is),
    else a seeded sample of its logged dose vectors. A cluster with no rows takes the overall ones."""
    labels = mask.nearest(scaled_states.astype(np.float32))
    rng = np.random.default_rng(seed)
    levels = (np.arange(n) + 0.5) / n

    def pick(rows: np.ndarray) -> np.ndarray:
        if unit_doses.shape[1] == 1:
            quantiles: np.ndarray = np.quantile(unit_doses[rows, 0], levels, method="inverted_cdf")
            return quantiles[:, None]
        sample: np.ndarray = unit_doses[rng.choice(rows, size=n, replace=len(rows) < n)]
        return sample

    everyone = pick(np.arange(len(unit_doses)))
    doses = np.stack([pick(np.flatnonzero(labels == k)) if (labels == k).any() else everyone
                      for k in range(len(mask.centres))])
    return AdmissibleActions(mask.centres, mask.allowed, doses.astype(np.float32))


def with_bin_median_candidates(
    mask: AdmissibleActions, scaled_states: np.ndarray, unit_doses: np.ndarray, actions: np.ndarray
) -> AdmissibleActions:
    """`mask` plus, per cluster, one candidate per allowed action bin: the per-column median of the
    doses (unit scale) logged in that bin and cluster, or over all clusters where the cluster has
    none there (a fallback bin). Clusters with fewer bins repeat their first candidate."""
    labels = mask.nearest(scaled_states.astype(np.float32))
    actions = actions.astype(np.int64)
    n_actions = mask.allowed.shape[1]
    overall = {a: np.median(unit_doses[actions == a], axis=0)
               for a in range(n_actions) if (actions == a).any()}
    out = np.empty((len(mask.centres), n_actions, unit_doses.shape[1]), dtype=np.float32)
    for k in range(len(mask.centres)):
        mine = labels == k
        picked = [np.median(unit_doses[mine & (actions == a)], axis=0) if (mine & (actions == a)).any()
                  else overall[a] for a in map(int, np.flatnonzero(mask.allowed[k])) if a in overall]
        picked = picked or list(overall.values())
        out[k] = np.stack(picked + [picked[0]] * (n_actions - len(picked)))
    return AdmissibleActions(mask.centres, mask.allowed, out)


def build_admissible_actions(
    scaled_states: np.ndarray, actions: np.ndarray, n_actions: int, config: MaskConfig, seed: int
) -> AdmissibleActions | None:
    """Build the mask from the clinicians' observed support per state cluster and/or the rule.

    Distinct states are their own clusters when there are at most `n_clusters` of them (as in the
    ICU-Sepsis MDP); otherwise k-means (seeded) groups them. Every cluster keeps at least one
    allowed action: its most frequent permitted one.
    """
    forbidden = np.zeros(n_actions, dtype=bool)
    bad = [a for a in config.forbidden_actions if not 0 <= a < n_actions]
    if bad:
        raise ConfigError(f"`mask.forbidden_actions` must be in [0, {n_actions - 1}]. Got {bad}.",
                          "Remove the out-of-range action indices.")
    forbidden[list(config.forbidden_actions)] = True
    if forbidden.all():
        raise ConfigError("`mask.forbidden_actions` forbids every action.", "Allow at least one action.")
    if config.source == "none":
        if not forbidden.any():
            return None
        d = scaled_states.shape[1]
        return AdmissibleActions(np.zeros((1, d), np.float32), ~forbidden[None, :])
    centres, labels = clusters(scaled_states, config.n_clusters, seed)
    counts = np.zeros((len(centres), n_actions), dtype=np.int64)
    np.add.at(counts, (labels, actions.astype(np.int64)), 1)
    counts[:, forbidden] = 0
    allowed = counts >= config.min_count
    empty = ~allowed.any(axis=1)
    fallback = np.where(counts.any(axis=1), counts.argmax(axis=1), int(np.argmin(forbidden)))
    allowed[np.flatnonzero(empty), fallback[empty]] = True
    return AdmissibleActions(centres.astype(np.float32), allowed)


def clusters(states: np.ndarray, n_clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster centres and labels of `states`: the distinct states when at most `n_clusters`, else k-means."""
    unique, labels = np.unique(states, axis=0, return_inverse=True)
    if len(unique) <= n_clusters:
        return unique, labels.reshape(-1)
    from sklearn.cluster import MiniBatchKMeans

    km = MiniBatchKMeans(n_clusters=n_clusters, random_state=seed, n_init=3, batch_size=4096)
    labels = km.fit_predict(states)
    return km.cluster_centers_, labels


def candidates_module(mask: AdmissibleActions, device: str) -> Any:
    """The candidate doses as a torch module: scaled states (n, d) -> (n, m, n_doses) unit doses."""
    import torch

    if mask.doses is None:
        raise ValueError("mask must hold candidate doses (mask.dose_candidates > 0). Got none.")

    class CandidateDoses(torch.nn.Module):
        centres: torch.Tensor
        centre_sq: torch.Tensor
        doses: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("centres", torch.as_tensor(mask.centres, dtype=torch.float32))
            self.register_buffer("centre_sq", (self.centres**2).sum(1))
            self.register_buffer("doses", torch.as_tensor(mask.doses, dtype=torch.float32))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            d2 = self.centre_sq[None, :] - 2.0 * x @ self.centres.T
            return self.doses[torch.argmin(d2, dim=1)]

    return CandidateDoses().to(device)


def mask_module(mask: AdmissibleActions, device: str) -> Any:
    """The mask as a torch module: scaled states (n, d) -> allowed actions (n, n_actions) bool."""
    import torch

    class AdmissibleMask(torch.nn.Module):
        centres: torch.Tensor
        centre_sq: torch.Tensor
        allowed: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("centres", torch.as_tensor(mask.centres, dtype=torch.float32))
            self.register_buffer("centre_sq", (self.centres**2).sum(1))
            self.register_buffer("allowed", torch.as_tensor(mask.allowed, dtype=torch.bool))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            d2 = self.centre_sq[None, :] - 2.0 * x @ self.centres.T
            return self.allowed[torch.argmin(d2, dim=1)]

    return AdmissibleMask().to(device)
