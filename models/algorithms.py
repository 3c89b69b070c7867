"""Typed settings for each offline-RL algorithm, converting to d3rlpy's own config dataclasses.

Defaults are d3rlpy 2.8.1's unless a docstring says why we changed them. The batch size lives in
`TrainConfig` (one per run, shared by every algorithm) and is passed to `to_d3rlpy`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from dosewise.data_schemas import StrictConfig


class _Network(StrictConfig):
    """Shared network and discounting settings."""

    gamma: float = Field(default=0.99, gt=0.0, le=1.0, description="Discount factor of the return.")
    hidden_units: list[int] = Field(
        default=[256, 256], min_length=1,
        description="Hidden layer sizes of every MLP encoder (d3rlpy's default encoder is [256, 256]).",
    )

    def _encoder(self) -> Any:
        from d3rlpy.models import VectorEncoderFactory

        return VectorEncoderFactory(hidden_units=list(self.hidden_units))


class _DiscreteQ(_Network):
    """Settings shared by the discrete Q-learning family.

    Changed on purpose: `learning_rate` 6.25e-5 -> 3e-4 and `target_update_interval` 8000 -> 1000.
    d3rlpy's values are the Atari DQN ones (batch 32, tens of millions of steps); clinical
    datasets train for 10^4-10^5 steps at batch 256, where a target refreshed every 8000 steps
    updates only a handful of times.
    """

    learning_rate: float = Field(default=3e-4, gt=0.0, description="Adam learning rate of the Q-network.")
    target_update_interval: int = Field(
        default=1000, ge=1, description="Gradient steps between hard copies into the target Q-network."
    )
    n_critics: int = Field(default=1, ge=1, description="Q-networks in the ensemble (min for targets).")

    def _common(self, batch_size: int) -> dict[str, Any]:
        from d3rlpy.optimizers import AdamFactory

        return {
            "batch_size": batch_size,
            "gamma": self.gamma,
            "learning_rate": self.learning_rate,
            "optim_factory": AdamFactory(),
            "encoder_factory": self._encoder(),
            "target_update_interval": self.target_update_interval,
            "n_critics": self.n_critics,
        }


class DQNSettings(_DiscreteQ):
    """DQN (Mnih et al. 2015): max over the target network's Q in the bootstrap target."""

    name: Literal["dqn"] = Field(default="dqn", description="Algorithm name.")

    def to_d3rlpy(self, batch_size: int) -> Any:
        """The matching `d3rlpy.algos.DQNConfig`."""
        from d3rlpy.algos import DQNConfig

        return DQNConfig(**self._common(batch_size))


class DoubleDQNSettings(_DiscreteQ):
    """Double DQN (van Hasselt et al. 2016): online network picks, target network evaluates."""

    name: Literal["double_dqn"] = Field(default="double_dqn", description="Algorithm name.")

    def to_d3rlpy(self, batch_size: int) -> Any:
        """The matching `d3rlpy.algos.DoubleDQNConfig`."""
        from d3rlpy.algos import DoubleDQNConfig

        return DoubleDQNConfig(**self._common(batch_size))


class DiscreteCQLSettings(_DiscreteQ):
    """Discrete CQL (Kumar et al. 2020): Double DQN plus a penalty on out-of-data actions' Q."""

    name: Literal["discrete_cql"] = Field(default="discrete_cql", description="Algorithm name.")
    alpha: float = Field(
        default=1.0, ge=0.0,
        description="Weight of the conservative loss logsumexp(Q) - Q(s, a_data); larger stays closer "
        "to the clinicians.",
    )

    def to_d3rlpy(self, batch_size: int) -> Any:
        """The matching `d3rlpy.algos.DiscreteCQLConfig`."""
        from d3rlpy.algos import DiscreteCQLConfig

        return DiscreteCQLConfig(alpha=self.alpha, **self._common(batch_size))


class DiscreteBCQSettings(_DiscreteQ):
    """Discrete BCQ (Fujimoto et al. 2019): Q-learning restricted to actions a behaviour-cloning
    model finds likely."""

    name: Literal["discrete_bcq"] = Field(default="discrete_bcq", description="Algorithm name.")
    action_flexibility: float = Field(
        default=0.3, gt=0.0, lt=1.0,
        description="Actions with imitator probability below this share of the most likely action's "
        "are never chosen.",
    )
    beta: float = Field(default=0.5, ge=0.0, description="Weight of the imitator's logit regulariser.")
    share_encoder: bool = Field(default=True, description="Q-network and imitator share one encoder.")

    def to_d3rlpy(self, batch_size: int) -> Any:
        """The matching `d3rlpy.algos.DiscreteBCQConfig`."""
        from d3rlpy.algos import DiscreteBCQConfig

        return DiscreteBCQConfig(
            action_flexibility=self.action_flexibility, beta=self.beta,
            share_encoder=self.share_encoder, **self._common(batch_size),
        )


class _ActorCritic(_Network):
    """Settings shared by the continuous actor-critic family (d3rlpy's defaults throughout)."""

    actor_learning_rate: float = Field(default=3e-4, gt=0.0, description="Adam learning rate of the policy.")
    critic_learning_rate: float = Field(default=3e-4, gt=0.0, description="Adam learning rate of critics.")
    tau: float = Field(default=0.005, gt=0.0, le=1.0, description="Polyak rate of the target networks.")
    n_critics: int = Field(default=2, ge=1, description="Critics in the ensemble (clipped double Q).")

    def _common(self, batch_size: int) -> dict[str, Any]:
        from d3rlpy.optimizers import AdamFactory

        return {
            "batch_size": batch_size,
            "gamma": self.gamma,
            "actor_learning_rate": self.actor_learning_rate,
            "critic_learning_rate": self.critic_learning_rate,
            "actor_optim_factory": AdamFactory(),
            "critic_optim_factory": AdamFactory(),
            "actor_encoder_factory": self._encoder(),
            "critic_encoder_factory": self._encoder(),
            "tau": self.tau,
            "n_critics": self.n_critics,
        }


class CQLSettings(_ActorCritic):
    """Continuous CQL (Kumar et al. 2020) on SAC, with a learned conservative weight."""

    name: Literal["cql"] = Field(default="cql", description="Algorithm name.")
    actor_learning_rate: float = Field(default=1e-4, gt=0.0, description="Adam learning rate of the policy.")
    temp_learning_rate: float = Field(default=1e-4, gt=0.0, description="Learning rate of SAC's temperature.")
    alpha_learning_rate: float = Field(default=1e-4, gt=0.0, description="Learning rate of the CQL weight.")
    initial_temperature: float = Field(default=1.0, gt=0.0, description="Initial SAC entropy temperature.")
    initial_alpha: float = Field(default=1.0, gt=0.0, description="Initial conservative weight.")
    alpha_threshold: float = Field(default=10.0, description="Lagrangian threshold of the conservative gap.")
    conservative_weight: float = Field(default=5.0, ge=0.0, description="Scale of the conservative loss.")
    n_action_samples: int = Field(default=10, ge=1, description="Actions sampled to estimate logsumexp Q.")

    def to_d3rlpy(self, batch_size: int) -> Any:
        """The matching `d3rlpy.algos.CQLConfig`."""
        from d3rlpy.algos import CQLConfig
        from d3rlpy.optimizers import AdamFactory

        return CQLConfig(
            temp_learning_rate=self.temp_learning_rate, alpha_learning_rate=self.alpha_learning_rate,
            temp_optim_factory=AdamFactory(), alpha_optim_factory=AdamFactory(),
            initial_temperature=self.initial_temperature, initial_alpha=self.initial_alpha,
            alpha_threshold=self.alpha_threshold, conservative_weight=self.conservative_weight,
            n_action_samples=self.n_action_samples, **self._common(batch_size),
        )


class IQLSettings(_ActorCritic):
    """Implicit Q-learning (Kostrikov et al. 2021): expectile value regression, weighted cloning."""

    name: Literal["iql"] = Field(default="iql", description="Algorithm name.")
    expectile: float = Field(default=0.7, gt=0.0, lt=1.0, description="Expectile of the value regression.")
    weight_temp: float = Field(default=3.0, gt=0.0, description="Inverse temperature of advantage weights.")
    max_weight: float = Field(default=100.0, gt=0.0, description="Clip of the advantage weights.")

    def to_d3rlpy(self, batch_size: int) -> Any:
        """The matching `d3rlpy.algos.IQLConfig`."""
        from d3rlpy.algos import IQLConfig

        return IQLConfig(
            expectile=self.expectile, weight_temp=self.weight_temp, max_weight=self.max_weight,
            value_encoder_factory=self._encoder(), **self._common(batch_size),
        )


class TD3PlusBCSettings(_ActorCritic):
    """TD3+BC (Fujimoto & Gu 2021): TD3 with a behaviour-cloning term on the actor."""

    name: Literal["td3_plus_bc"] = Field(default="td3_plus_bc", description="Algorithm name.")
    target_smoothing_sigma: float = Field(default=0.2, ge=0.0, description="Noise on target actions.")
    target_smoothing_clip: float = Field(default=0.5, ge=0.0, description="Clip of the target noise.")
    alpha: float = Field(default=2.5, gt=0.0, description="Weight of Q against behaviour cloning.")
    update_actor_interval: int = Field(default=2, ge=1, description="Critic steps per actor step.")

    def to_d3rlpy(self, batch_size: int) -> Any:
        """The matching `d3rlpy.algos.TD3PlusBCConfig`."""
        from d3rlpy.algos import TD3PlusBCConfig

        return TD3PlusBCConfig(
            target_smoothing_sigma=self.target_smoothing_sigma,
            target_smoothing_clip=self.target_smoothing_clip, alpha=self.alpha,
            update_actor_interval=self.update_actor_interval, **self._common(batch_size),
        )


class PessimisticMBPSettings(StrictConfig):
    """Pessimistic model-based planning (`planning.py`): value iteration on the empirical MDP over
    state clusters, with a support mask and a count penalty. Not a d3rlpy algorithm: no network,
    no gradient steps (`n_steps`, `batch_size` and the sampler settings do not apply)."""

    name: Literal["pessimistic_mbp"] = Field(default="pessimistic_mbp", description="Algorithm name.")
    gamma: float = Field(default=0.99, gt=0.0, le=1.0, description="Discount factor of the planned return.")
    n_clusters: int = Field(
        default=750, ge=1, description="State clusters (distinct states when there are at most this many)."
    )
    min_count: int = Field(
        default=20, ge=1, description="Times an action must be seen in a cluster to be planned with there."
    )
    penalty: float = Field(
        default=0.0, ge=0.0,
        description="Pessimism: each action's value is lowered by penalty x max|reward| / sqrt(count).",
    )
    n_iterations: int = Field(default=2000, ge=1, description="Most value-iteration sweeps.")

    def to_d3rlpy(self, batch_size: int) -> Any:
        """Always refused: planning has no d3rlpy counterpart (`train_policy` dispatches to `planning.py`)."""
        from dosewise.data_schemas import ConfigError

        raise ConfigError("`pessimistic_mbp` is planned, not built as a d3rlpy algorithm.",
                          "Train it with `dosewise train` / `train_policy`, which plan it directly.")


DISCRETE_ALGORITHMS = ("dqn", "double_dqn", "discrete_cql", "discrete_bcq")
CONTINUOUS_ALGORITHMS = ("cql", "iql", "td3_plus_bc")
PLANNING_ALGORITHMS = ("pessimistic_mbp",)
ALGORITHMS = DISCRETE_ALGORITHMS + CONTINUOUS_ALGORITHMS + PLANNING_ALGORITHMS
