"""Faster gradient steps for d3rlpy implementations that compute the same loss (CPU and GPU).

- **DiscreteCQL**: d3rlpy runs the Q-network forward (and backward) on the batch twice per step,
  once for the TD term and once for the conservative term. The fused loss runs it once and uses
  the same Q-values for both; the loss is the same function of the weights (equal up to float
  rounding), at about 2/3 of the matrix work.
- **Adam**: `optimizers.FusedAdamFactory`, a d3rlpy `OptimizerFactory` building torch's fused
  Adam kernel, passed in the algorithm config by `build_algo`.

Why subclasses: d3rlpy has no hook for an implementation's loss; `compute_loss` is the method its
own implementations override on one another (`DiscreteCQLImpl.compute_loss` extends
`DQNImpl.compute_loss`). So the fused loss is `FusedDiscreteCQLImpl`, a subclass of d3rlpy's
`DiscreteCQLImpl` that overrides `compute_loss` and nothing else (and `FusedMaskedDiscreteCQLImpl`
on the masked-target implementation), and `FusedDiscreteCQL` / `FusedMaskedDiscreteCQL` are
d3rlpy's algorithms whose `inner_create_impl` builds the same networks with d3rlpy's builders
(`masked_algos.DqnFamilyAlgo`) and hands them to the fused implementation. Checkpoints, optimiser
and `predict` stay d3rlpy's. `build_algo` picks them through `fused_algorithm` when
`train.fuse_updates` is on and the loss fits (one mean Q-function: no ensemble, no distributional
Q); `train.fuse_updates = false` keeps d3rlpy's own classes and Adam.
"""

from __future__ import annotations

from typing import Any

import torch
from d3rlpy.algos import DiscreteCQL
from d3rlpy.algos.qlearning.torch.cql_impl import DiscreteCQLImpl, DiscreteCQLLoss

from .masked_algos import DqnFamilyAlgo, MaskedDiscreteCQL, MaskedDiscreteCQLImpl

FUSED_CQL_LOSS = "discrete_cql_loss"


class _FusedCQLLoss:
    """d3rlpy's DiscreteCQL loss from one forward pass of its (one-member, mean) Q-network."""

    _modules: Any
    _gamma: float
    _alpha: float
    action_size: int

    def compute_loss(self, batch: Any, q_tpn: torch.Tensor) -> DiscreteCQLLoss:
        """Mean Huber TD error + alpha * mean(logsumexp Q(s, .) - Q(s, a_data)), as d3rlpy's."""
        import torch.nn.functional as F
        from d3rlpy.models.torch.q_functions.utility import compute_huber_loss

        values = self._modules.q_funcs[0](batch.observations).q_value
        one_hot = F.one_hot(batch.actions.long().view(-1), num_classes=self.action_size).float()
        data_values = (values * one_hot).sum(dim=1, keepdim=True)
        target = batch.rewards + self._gamma**batch.intervals * q_tpn * (1 - batch.terminals)
        td_loss = compute_huber_loss(data_values, target).mean()
        conservative = (torch.logsumexp(values, dim=1, keepdim=True) - data_values).mean()
        return DiscreteCQLLoss(loss=td_loss + self._alpha * conservative, td_loss=td_loss,
                               conservative_loss=conservative)


class FusedDiscreteCQLImpl(_FusedCQLLoss, DiscreteCQLImpl):  # type: ignore[misc]  # d3rlpy ships no type hints
    """d3rlpy's DiscreteCQL implementation with the one-forward-pass loss."""


class FusedMaskedDiscreteCQLImpl(_FusedCQLLoss, MaskedDiscreteCQLImpl):
    """The masked-target DiscreteCQL implementation with the one-forward-pass loss."""


class FusedDiscreteCQL(DqnFamilyAlgo, DiscreteCQL):  # type: ignore[misc]  # d3rlpy ships no type hints
    """d3rlpy's DiscreteCQL built with the fused-loss implementation."""

    impl_class = FusedDiscreteCQLImpl

    def _extra(self) -> dict[str, Any]:
        return {"alpha": self._config.alpha}


class FusedMaskedDiscreteCQL(MaskedDiscreteCQL):
    """The masked-target DiscreteCQL built with the fused-loss implementation."""

    impl_class = FusedMaskedDiscreteCQLImpl


def _loss_fits(d3_config: Any) -> bool:
    """DiscreteCQL with one mean Q-function (no ensemble, no distributional Q)."""
    return (d3_config.get_type() == "discrete_cql" and int(d3_config.n_critics) == 1
            and d3_config.q_func_factory.get_type() == "mean")


def fused_algorithm(d3_config: Any, device: str, enable_ddp: bool, admissible: torch.nn.Module | None) -> Any:
    """The fused-loss algorithm for `d3_config` (masked target when `admissible`), or None where the
    fused loss does not fit and d3rlpy's own loss runs."""
    if not _loss_fits(d3_config):
        return None
    cls = FusedDiscreteCQL if admissible is None else FusedMaskedDiscreteCQL
    algo = cls(d3_config, device, enable_ddp)
    algo.admissible = admissible
    return algo


def fused_parts(algo: Any) -> list[str]:
    """Which fused updates `algo` runs (["discrete_cql_loss"] or []); fused Adam is in its config."""
    return [FUSED_CQL_LOSS] if isinstance(algo.impl, _FusedCQLLoss) else []
