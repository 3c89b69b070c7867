"""Discrete d3rlpy algorithms whose bootstrap target only picks admissible actions.

Why subclasses: d3rlpy has no action-mask hook (takuseno/d3rlpy#356), and the target's action choice
sits inside the implementation's `compute_target`, the very method d3rlpy's own `DoubleDQNImpl`
overrides on `DQNImpl`. So each masked implementation here is a subclass that overrides
`compute_target` and nothing else, and each masked algorithm is a subclass of d3rlpy's algorithm that
overrides `inner_create_impl` (the abstract method through which every d3rlpy algorithm builds its
implementation) to build the same networks with d3rlpy's public builders
(`create_discrete_q_function`, `create_categorical_policy`) and hand them to the masked
implementation. Loss, optimiser, checkpoint format and `predict` stay d3rlpy's, so a policy trained
with a masked target saves and loads as the plain algorithm (the mask then applies when
recommending, in `PolicyNetwork`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from d3rlpy.algos import DQN as D3DQN
from d3rlpy.algos import DiscreteBCQ, DiscreteCQL, DoubleDQN
from d3rlpy.algos.qlearning.torch.bcq_impl import DiscreteBCQImpl, DiscreteBCQModules
from d3rlpy.algos.qlearning.torch.cql_impl import DiscreteCQLImpl
from d3rlpy.algos.qlearning.torch.dqn_impl import DoubleDQNImpl, DQNImpl, DQNModules
from d3rlpy.models.builders import create_categorical_policy, create_discrete_q_function
from d3rlpy.models.torch import CategoricalPolicy, compute_output_size

from dosewise.data_schemas import ConfigError

NEG_INF = float("-inf")


def _masked_argmax(values: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Index of the highest value among each row's allowed actions."""
    return torch.where(allowed, values, NEG_INF).argmax(dim=1)


class _AdmissibleImpl:
    """Keeps the `admissible` module (state -> allowed-action mask) that a masked target reads; the
    rest of the constructor is d3rlpy's own."""

    def __init__(self, *, admissible: torch.nn.Module, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.admissible = admissible


class MaskedDQNImpl(_AdmissibleImpl, DQNImpl):  # type: ignore[misc]  # d3rlpy ships no type hints
    """DQN: the target is max over the target network's Q of the next state's allowed actions."""

    def compute_target(self, batch: Any) -> torch.Tensor:
        """Q_target(s', argmax_{a allowed in s'} Q_target(s', a))."""
        with torch.no_grad():
            nxt = batch.next_observations
            action = _masked_argmax(self._targ_q_func_forwarder.compute_expected_q(nxt), self.admissible(nxt))
            target: torch.Tensor = self._targ_q_func_forwarder.compute_target(nxt, action, reduction="min")
            return target


class MaskedDoubleDQNImpl(_AdmissibleImpl, DoubleDQNImpl):  # type: ignore[misc]  # d3rlpy ships no type hints
    """Double DQN: the online network's argmax over the next state's allowed actions, valued by the target."""

    def compute_target(self, batch: Any) -> torch.Tensor:
        """Q_target(s', argmax_{a allowed in s'} Q(s', a))."""
        with torch.no_grad():
            nxt = batch.next_observations
            action = _masked_argmax(self._q_func_forwarder.compute_expected_q(nxt), self.admissible(nxt))
            target: torch.Tensor = self._targ_q_func_forwarder.compute_target(nxt, action, reduction="min")
            return target


class MaskedDiscreteCQLImpl(_AdmissibleImpl, DiscreteCQLImpl):  # type: ignore[misc]  # d3rlpy ships no type hints
    """Discrete CQL (a Double DQN target): the same masked target as `MaskedDoubleDQNImpl`."""

    compute_target = MaskedDoubleDQNImpl.compute_target


class MaskedDiscreteBCQImpl(_AdmissibleImpl, DiscreteBCQImpl):  # type: ignore[misc]  # d3rlpy ships no type hints
    """Discrete BCQ: the argmax runs over actions that pass the imitator threshold *and* the mask
    (the mask's allowed actions when none pass both)."""

    def compute_target(self, batch: Any) -> torch.Tensor:
        """Q_target(s', BCQ's choice in s' restricted to its allowed actions)."""
        with torch.no_grad():
            nxt = batch.next_observations
            log_probs = torch.log_softmax(self._modules.imitator(nxt).logits, dim=1)
            ratio = log_probs - log_probs.max(dim=1, keepdim=True).values
            allowed = self.admissible(nxt)
            keep = (ratio > math.log(self._action_flexibility)) & allowed
            keep = keep | (allowed & ~keep.any(dim=1, keepdim=True))
            action = _masked_argmax(self._q_func_forwarder.compute_expected_q(nxt), keep)
            target: torch.Tensor = self._targ_q_func_forwarder.compute_target(nxt, action, reduction="min")
            return target


class DqnFamilyAlgo:
    """Builds the Q-networks as d3rlpy does and hands them to `impl_class` (a masked implementation
    when `admissible` is set; `fused_updates` also builds its fused-loss implementations with it)."""

    impl_class: type[Any]
    admissible: torch.nn.Module | None = None
    _config: Any
    _device: str
    _enable_ddp: bool
    compiled: bool

    def _q_networks(self, observation_shape: Any, action_size: int) -> tuple[Any, Any, Any, Any]:
        """(q_funcs, forwarder, target q_funcs, target forwarder) from the config's factories."""
        def make() -> Any:
            return create_discrete_q_function(
                observation_shape, action_size, self._config.encoder_factory, self._config.q_func_factory,
                n_ensembles=self._config.n_critics, device=self._device, enable_ddp=self._enable_ddp)

        q_funcs, forwarder = make()
        targ_q_funcs, targ_forwarder = make()
        return q_funcs, forwarder, targ_q_funcs, targ_forwarder

    def _common(self, observation_shape: Any, action_size: int, forwarder: Any, targ_forwarder: Any
                ) -> dict[str, Any]:
        masked = {} if self.admissible is None else {"admissible": self.admissible}
        return {**masked, "observation_shape": observation_shape, "action_size": action_size,
                "q_func_forwarder": forwarder,
                "targ_q_func_forwarder": targ_forwarder, "gamma": self._config.gamma,
                "target_update_interval": self._config.target_update_interval,
                "compiled": self.compiled, "device": self._device}

    def _optim(self, named_modules: list[Any]) -> Any:
        return self._config.optim_factory.create(named_modules, lr=self._config.learning_rate,
                                                 compiled=self.compiled)

    def _extra(self) -> dict[str, Any]:
        return {}

    def inner_create_impl(self, observation_shape: Any, action_size: int) -> None:
        """d3rlpy's construction of the DQN family (q_funcs, targets, one optimiser), masked target."""
        q_funcs, forwarder, targ_q_funcs, targ_forwarder = self._q_networks(observation_shape, action_size)
        modules = DQNModules(q_funcs=q_funcs, targ_q_funcs=targ_q_funcs,
                             optim=self._optim(list(q_funcs.named_modules())))
        common = self._common(observation_shape, action_size, forwarder, targ_forwarder)
        self._impl = self.impl_class(modules=modules, **common, **self._extra())


class MaskedDQN(DqnFamilyAlgo, D3DQN):  # type: ignore[misc]  # d3rlpy ships no type hints
    """d3rlpy's DQN with a masked bootstrap target."""

    impl_class = MaskedDQNImpl


class MaskedDoubleDQN(DqnFamilyAlgo, DoubleDQN):  # type: ignore[misc]  # d3rlpy ships no type hints
    """d3rlpy's Double DQN with a masked bootstrap target."""

    impl_class = MaskedDoubleDQNImpl


class MaskedDiscreteCQL(DqnFamilyAlgo, DiscreteCQL):  # type: ignore[misc]  # d3rlpy ships no type hints
    """d3rlpy's discrete CQL with a masked bootstrap target (the conservative loss is unchanged)."""

    impl_class = MaskedDiscreteCQLImpl

    def _extra(self) -> dict[str, Any]:
        return {"alpha": self._config.alpha}


class MaskedDiscreteBCQ(DqnFamilyAlgo, DiscreteBCQ):  # type: ignore[misc]  # d3rlpy ships no type hints
    """d3rlpy's discrete BCQ with a masked bootstrap target (imitator built as d3rlpy builds it)."""

    impl_class = MaskedDiscreteBCQImpl

    def inner_create_impl(self, observation_shape: Any, action_size: int) -> None:
        """As d3rlpy: the imitator shares the Q-network's encoder when `share_encoder`."""
        q_funcs, forwarder, targ_q_funcs, targ_forwarder = self._q_networks(observation_shape, action_size)
        if self._config.share_encoder:
            hidden = compute_output_size([observation_shape], q_funcs[0].encoder)
            imitator = CategoricalPolicy(encoder=q_funcs[0].encoder, hidden_size=hidden,
                                         action_size=action_size).to(self._device)
        else:
            imitator = create_categorical_policy(observation_shape, action_size, self._config.encoder_factory,
                                                 device=self._device, enable_ddp=self._enable_ddp)
        optim = self._optim(list(q_funcs.named_modules()) + list(imitator.named_modules()))
        modules = DiscreteBCQModules(q_funcs=q_funcs, targ_q_funcs=targ_q_funcs, imitator=imitator,
                                     optim=optim)
        self._impl = self.impl_class(
            modules=modules, action_flexibility=self._config.action_flexibility, beta=self._config.beta,
            **self._common(observation_shape, action_size, forwarder, targ_forwarder))


MASKED = {"dqn": MaskedDQN, "double_dqn": MaskedDoubleDQN, "discrete_cql": MaskedDiscreteCQL,
          "discrete_bcq": MaskedDiscreteBCQ}


def masked_algorithm(d3_config: Any, device: str, enable_ddp: bool, admissible: torch.nn.Module) -> Any:
    """The masked-target counterpart of `d3_config.create(device, enable_ddp)`."""
    cls = MASKED.get(d3_config.get_type())
    if cls is None:
        raise ConfigError(
            f"Admissible-action masks in the target are defined for discrete algorithms "
            f"({', '.join(MASKED)}), not {d3_config.get_type()!r}.",
            "Set mask.in_target = false (the mask still applies when recommending).",
        )
    algo = cls(d3_config, device, enable_ddp)
    algo.admissible = admissible
    return algo
