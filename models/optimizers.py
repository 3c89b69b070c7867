"""`FusedAdamFactory`: d3rlpy's `AdamFactory` building torch's fused Adam kernel.

d3rlpy's `OptimizerFactory` is its extension point for optimizers: an algorithm config takes one
per network (`optim_factory`, `critic_optim_factory`, ...). `AdamFactory` builds torch's per-tensor
Adam loop; this factory builds the same Adam with `fused=True`, one kernel over all parameters:
the same update up to float rounding, faster on CPU and GPU. Under d3rlpy's CUDA graphs
(`compiled`) and with AMSGrad it builds the plain Adam. `with_fused_adam` swaps every
`AdamFactory` of a d3rlpy algorithm config for this one.

Importing this module imports d3rlpy (models code imports it only when building an algorithm).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from d3rlpy.optimizers import AdamFactory, OptimizerWrapper
from d3rlpy.optimizers.optimizers import register_optimizer_factory
from torch import nn
from torch.optim import Adam


def _parameters(named_modules: Iterable[tuple[str, nn.Module]]) -> list[nn.Parameter]:
    unique: dict[nn.Parameter, None] = {}
    for _, module in named_modules:
        unique.update(dict.fromkeys(module.parameters()))
    return list(unique)


@dataclasses.dataclass()
class FusedAdamFactory(AdamFactory):  # type: ignore[misc]  # d3rlpy ships no type hints
    """Adam as torch's fused kernel (same arguments as d3rlpy's `AdamFactory`)."""

    def create(
        self, named_modules: Iterable[tuple[str, nn.Module]], lr: float, compiled: bool
    ) -> OptimizerWrapper:
        """The optimizer wrapper; plain Adam when d3rlpy compiles the step into CUDA graphs."""
        if compiled or self.amsgrad:
            plain = AdamFactory(**{f.name: getattr(self, f.name) for f in dataclasses.fields(AdamFactory)})
            return plain.create(named_modules, lr, compiled)
        return super().create(named_modules, lr, compiled)

    def create_optimizer(self, named_modules: Iterable[tuple[str, nn.Module]], lr: float) -> Adam:
        """torch's Adam with `fused=True`."""
        return Adam(params=_parameters(named_modules), lr=lr, betas=self.betas, eps=self.eps,
                    weight_decay=self.weight_decay, amsgrad=False, fused=True)

    @staticmethod
    def get_type() -> str:
        """The name d3rlpy serialises this factory under."""
        return "fused_adam"


register_optimizer_factory(FusedAdamFactory)


def with_fused_adam(d3_config: Any) -> Any:
    """A copy of a d3rlpy algorithm (or FQE) config whose plain `AdamFactory` fields are fused."""
    changes = {}
    for item in dataclasses.fields(d3_config):
        value = getattr(d3_config, item.name)
        if item.name.endswith("optim_factory") and type(value) is AdamFactory:
            changes[item.name] = FusedAdamFactory(**{f.name: getattr(value, f.name)
                                                     for f in dataclasses.fields(AdamFactory)})
    return dataclasses.replace(d3_config, **changes)
