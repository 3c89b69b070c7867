"""Faster gradient steps for d3rlpy implementations that compute the same loss (CPU and GPU).

- **DiscreteCQL**: d3rlpy runs the Q-network forward (and backward) on the batch twice per step,
  once for the TD term and once for the conservative term. The fused loss runs it once and uses
  the same Q-values for both; the loss is the same function of the weights (equal up to float
  rounding), at about 2/3 of the matrix work.
- **Adam**: d3rlpy's `AdamFactory` builds torch's per-tensor Adam loop; torch's fused Adam kernel
  does the same update in one kernel over all parameters.

Applied after `build_algo`, before the first step, by `fuse_updates`; `train.fuse_updates = false`
keeps d3rlpy's own code path.
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
    """Exactly d3rlpy's DiscreteCQL with one mean Q-function (no ensemble, no distributional Q)."""
    from d3rlpy.algos.qlearning.torch.cql_impl import DiscreteCQLImpl
    from d3rlpy.models.torch.q_functions.mean_q_function import DiscreteMeanQFunction

    q_funcs = getattr(impl._modules, "q_funcs", [])
    return (type(impl) is DiscreteCQLImpl and len(q_funcs) == 1
            and isinstance(q_funcs[0], DiscreteMeanQFunction))


def _fused_adam(wrapper: Any) -> bool:
    """Swap a fresh (never stepped) torch Adam inside d3rlpy's `OptimizerWrapper` for the fused one."""
    import torch

    optim = wrapper._optim
    if type(optim) is not torch.optim.Adam or optim.state or wrapper._compiled:
        return False
    group = optim.param_groups[0]
    if len(optim.param_groups) != 1 or group["amsgrad"] or group.get("fused"):
        return False
    wrapper._optim = torch.optim.Adam(group["params"], lr=group["lr"], betas=group["betas"], eps=group["eps"],
                                      weight_decay=group["weight_decay"], fused=True)
    return True


def fuse_updates(algo: Any) -> list[str]:
    """Apply the fused CQL loss and fused Adam where they fit `algo`; returns what was applied.

    Must run before the first gradient step (a stepped optimizer is left as it is)."""
    from d3rlpy.optimizers.optimizers import OptimizerWrapper

    impl = algo.impl
    applied = []
    if _can_fuse_cql(impl):
        impl.compute_loss = MethodType(_fused_cql_loss, impl)
        applied.append("discrete_cql_loss")
    modules = impl._modules
    for name in sorted(vars(modules)):
        wrapper = getattr(modules, name)
        if isinstance(wrapper, OptimizerWrapper) and _fused_adam(wrapper):
            applied.append(f"fused_adam:{name}")
    return applied
