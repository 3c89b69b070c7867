"""The greedy policy as one torch module: raw features in, action index out.

`TrainedPolicy.recommend` runs this module, and the TorchScript and ONNX exports are traces of the
same module, so exported outputs equal `recommend` by construction. It contains the feature
scaling, the Q-head (or the actor for continuous policies), the admissible-action mask and the
projection of continuous doses onto the discrete bins.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

NEG_INF = float("-inf")


class DiscreteQHead(nn.Module):
    """Mean over the critic ensemble of Q(s, .); BCQ also filters by its imitator."""

    imitator: Any

    def __init__(self, q_funcs: nn.ModuleList, imitator: Any, flexibility: float) -> None:
        super().__init__()
        self.q_funcs = q_funcs
        self.imitator = imitator
        self.log_flexibility = float(np.log(flexibility)) if imitator is not None else 0.0

    def q_values(self, z: torch.Tensor) -> torch.Tensor:
        return torch.stack([q(z).q_value for q in self.q_funcs]).mean(dim=0)

    def candidates(self, z: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Actions the algorithm itself would consider (all, except for BCQ)."""
        if self.imitator is None:
            return torch.ones_like(q, dtype=torch.bool)
        # The imitator's logits, without building the torch Categorical that d3rlpy's forward returns
        # (its argument validation is data-dependent and cannot be exported).
        logits = self.imitator._fc(self.imitator._encoder(z))
        log_probs = torch.log_softmax(logits, dim=1)
        return (log_probs - log_probs.max(dim=1, keepdim=True).values) > self.log_flexibility


class ContinuousHead(nn.Module):
    """Actor doses, their bins, and Q(s, representative dose of each bin)."""

    low: torch.Tensor
    high: torch.Tensor
    edges: torch.Tensor
    strides: torch.Tensor
    centres: torch.Tensor
    actor: Any

    def __init__(self, q_funcs: nn.ModuleList, actor: Any, spec: dict[str, Any]) -> None:
        super().__init__()
        self.q_funcs = q_funcs
        self.actor = actor
        f32 = torch.float32
        self.register_buffer("low", torch.as_tensor(spec["low"], dtype=f32))
        self.register_buffer("high", torch.as_tensor(spec["high"], dtype=f32))
        self.register_buffer("edges", torch.as_tensor(spec["inner_edges"], dtype=f32))  # (k, m) +inf padded
        self.register_buffer("strides", torch.as_tensor(spec["strides"], dtype=torch.int64))
        self.register_buffer("centres", torch.as_tensor(spec["centres_unit"], dtype=f32))  # (A, k)

    def doses(self, z: torch.Tensor) -> torch.Tensor:
        unit: torch.Tensor = self.actor(z).squashed_mu
        return self.to_doses(unit)

    def to_doses(self, unit: torch.Tensor) -> torch.Tensor:
        return self.low + (unit.clamp(-1.0, 1.0) + 1.0) * 0.5 * (self.high - self.low)

    def best_candidate(self, z: torch.Tensor, candidates: torch.Tensor, by_q: bool) -> torch.Tensor:
        """Doses of the candidate (candidates: (n, m, n_doses) unit scale) nearest the actor's
        dose, or of highest Q when `by_q`."""
        n, m, k = candidates.shape
        if by_q:
            zz = z.repeat_interleave(m, dim=0)
            aa = candidates.reshape(n * m, k)
            q = torch.stack([f(zz, aa).q_value for f in self.q_funcs]).mean(dim=0).reshape(n, m)
            best = q.argmax(dim=1)
        else:
            unit = self.actor(z).squashed_mu.clamp(-1.0, 1.0)
            best = ((candidates - unit[:, None, :]) ** 2).sum(dim=2).argmin(dim=1)
        return self.to_doses(candidates[torch.arange(n), best])

    def bins(self, doses: torch.Tensor) -> torch.Tensor:
        per_dim = (doses[:, :, None] >= self.edges[None, :, :]).sum(dim=2)
        return (per_dim * self.strides[None, :]).sum(dim=1)

    def q_values(self, z: torch.Tensor) -> torch.Tensor:
        n, a = z.shape[0], self.centres.shape[0]
        zz = z.repeat_interleave(a, dim=0)
        aa = self.centres.repeat(n, 1)
        q = torch.stack([f(zz, aa).q_value for f in self.q_funcs]).mean(dim=0)
        return q.reshape(n, a)


class PolicyNetwork(nn.Module):
    """Raw (unscaled) float32 features (n, d) -> greedy admissible action (n,) int64."""

    mean: torch.Tensor
    std: torch.Tensor
    head: DiscreteQHead | ContinuousHead

    def __init__(
        self, mean: np.ndarray, std: np.ndarray, head: DiscreteQHead | ContinuousHead, mask: nn.Module | None,
        candidates: nn.Module | None = None, candidates_by_q: bool = False,
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.head = head
        self.mask = mask
        self.candidates = candidates  # continuous only: logged doses per state cluster (masks.py)
        self.candidates_by_q = candidates_by_q
        self.continuous = isinstance(head, ContinuousHead)

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def allowed(self, z: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        if self.mask is None:
            return torch.ones_like(q, dtype=torch.bool)
        allowed: torch.Tensor = self.mask(z)
        return allowed

    def act(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(action, q-values, allowed mask, actor doses or an empty (n, 0) tensor)."""
        z = self.scale(x)
        q = self.head.q_values(z)
        allowed = self.allowed(z, q)
        best_allowed = torch.where(allowed, q, NEG_INF).argmax(dim=1)
        if isinstance(self.head, ContinuousHead):
            if self.candidates is not None:
                doses = self.head.best_candidate(z, self.candidates(z), self.candidates_by_q)
            else:
                doses = self.head.doses(z)
            proposed = self.head.bins(doses)
            ok = allowed.gather(1, proposed[:, None]).squeeze(1)
            return torch.where(ok, proposed, best_allowed), q, allowed, doses
        keep = self.head.candidates(z, q) & allowed
        keep = keep | (allowed & ~keep.any(dim=1, keepdim=True))  # no bool `where`: ONNX Runtime lacks it
        action = torch.where(keep, q, NEG_INF).argmax(dim=1)
        return action, q, allowed, x[:, :0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)[0]


def build_policy_network(
    algo: Any, mean: np.ndarray, std: np.ndarray, mask: nn.Module | None,
    continuous: dict[str, Any] | None, bcq_flexibility: float | None, candidates: nn.Module | None = None,
    candidates_by_q: bool = False,
) -> PolicyNetwork:
    """Assemble the greedy module from a built d3rlpy algorithm's networks (shared, not copied);
    `candidates` (continuous policies) replaces the actor's dose by the best logged candidate."""
    impl = algo.impl
    if continuous is not None:
        head: DiscreteQHead | ContinuousHead = ContinuousHead(impl.q_function, impl.policy, continuous)
    else:
        imitator = impl._modules.imitator if bcq_flexibility is not None else None
        head = DiscreteQHead(impl.q_function, imitator, bcq_flexibility or 1.0)
    net = PolicyNetwork(mean, std, head, mask, candidates, candidates_by_q).to(algo.impl.device)
    return net.eval()
