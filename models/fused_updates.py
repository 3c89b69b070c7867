"""Faster gradient steps for d3rlpy implementations that compute the same loss (CPU and GPU).

- **DiscreteCQL**: d3rlpy runs the Q-network forward (and backward) on the batch twice per step,
  once for the TD term and once for the conservative term. The fused loss runs it once and uses
  the same Q-values for both; the loss is the same function of the weights (equal up to float
  rounding), at about 2/3 of the matrix work.
- **Adam**: `optimizers.FusedAdamFactory`, a d3rlpy `OptimizerFactory` building torch's fused
  Adam kernel, passed in the algorithm config by `build_algo`.

The loss is applied after `build_algo`, before the first step, by `fuse_updates`;
`train.fuse_updates = false` keeps d3rlpy's own code path for both.
"""

from __future__ import annotations

from types import MethodType
from typing import Any


def _fused_cql_loss(self: Any, batch: Any, q_tpn: Any) -> Any:
    """d3rlpy's DiscreteCQL loss (mean Huber TD error + alpha * mean(logsumexp Q - Q(s, a_data)))
    from a single forward pass of the (one-member) Q-network."""
    import torch
    import torch.nn.functional as F
    from d3rlpy.algos.qlearning.torch.cql_impl import DiscreteCQLLoss
    from d3rlpy.models.torch.q_functions.utility import compute_huber_loss

    values = self._modules.q_funcs[0](batch.observations).q_value
    one_hot = F.one_hot(batch.actions.long().view(-1), num_classes=self.action_size).float()
    data_values = (values * one_hot).sum(dim=1, keepdim=True)
    target = batch.rewards + self._gamma**batch.intervals * q_tpn * (1 - batch.terminals)
    td_loss = compute_huber_loss(data_values, target).mean()
    conservative = (torch.logsumexp(values, dim=1, keepdim=True) - data_values).mean()
    return DiscreteCQLLoss(loss=td_loss + self._alpha * conservative, td_loss=td_loss,
                           conservative_loss=conservative)


def _can_fuse_cql(impl: Any) -> bool:
    """d3rlpy's DiscreteCQL (or its masked-target subclass, whose loss is d3rlpy's) with one mean
    Q-function (no ensemble, no distributional Q)."""
    from d3rlpy.algos.qlearning.torch.cql_impl import DiscreteCQLImpl
    from d3rlpy.models.torch.q_functions.mean_q_function import DiscreteMeanQFunction

    q_funcs = getattr(impl._modules, "q_funcs", [])
    return (isinstance(impl, DiscreteCQLImpl) and len(q_funcs) == 1
            and isinstance(q_funcs[0], DiscreteMeanQFunction))


def fuse_updates(algo: Any) -> list[str]:
    """Apply the fused CQL loss where it fits `algo`; returns what was applied.

    (Fused Adam is not applied here: `build_algo` passes `optimizers.FusedAdamFactory`, d3rlpy's
    own optimizer extension point, in the algorithm config.)"""
    impl = algo.impl
    if not _can_fuse_cql(impl):
        return []
    impl.compute_loss = MethodType(_fused_cql_loss, impl)
    return ["discrete_cql_loss"]
