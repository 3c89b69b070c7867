"""Fitted Q Evaluation of any `Policy` with d3rlpy's `DiscreteFQE`, fed by the vectorised sampler.

d3rlpy's FQE bootstraps from the greedy action of a d3rlpy algorithm. Dosewise evaluates
ε-greedy and stochastic policies given as probabilities, so the target here is the expectation
sum_a pi(a|s') Q'(s', a) (expected-SARSA form of Le et al. 2019): pi(.|s') rides in the batch's
`next_actions` slot, gathered with the same indices as the transitions.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dosewise.data_schemas import columns as c
from dosewise.data_schemas.console import progress

from ..datasets import LoadedTrajectories, StateScaler, TransitionArrays, load_training_data
from ..device import resolve_device
from ..sampling import TransitionSampler, update_step
from .config import FqeConfig

PolicyProbabilities = Any  # callable: frame -> (n, A) target action probabilities


@dataclass
class FittedQ:
    """A fitted Q-function for one target policy: Q(s, .) for any states frame."""

    fqe: Any
    scaler: StateScaler
    n_steps: int
    final_loss: float

    def q_values(self, states: pd.DataFrame, chunk: int = 65536) -> np.ndarray:
        """(n, A) estimated Q^pi(s, a)."""
        import torch

        obs = self.scaler.transform(states)
        forwarder = self.fqe.impl.q_function
        out = []
        with torch.no_grad():
            for start in range(0, len(obs), chunk):
                x = torch.as_tensor(obs[start:start + chunk], device=self.fqe.impl.device)
                out.append(forwarder(x).cpu().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, self.fqe.impl.action_size))


def fqe_step(impl: Any, loss: Any, grad_step: int) -> dict[str, float]:
    """One FQE gradient step on `loss`, syncing the target network on d3rlpy's interval (shared by
    the discrete and the continuous FQE impls)."""
    impl._modules.optim.zero_grad()
    loss.backward()
    impl._modules.optim.step()
    if grad_step % impl._target_update_interval == 0:
        impl.update_target()
    return {"loss": float(loss.detach().cpu())}


def _expected_fqe_impl_class() -> type:
    from d3rlpy.ope.torch.fqe_impl import DiscreteFQEImpl

    class ExpectedDiscreteFQEImpl(DiscreteFQEImpl):  # type: ignore[misc]
        """DiscreteFQE whose target is the expectation over the target policy's probabilities."""

        def inner_update(self, batch: Any, grad_step: int) -> dict[str, float]:
            import torch

            with torch.no_grad():
                q_next = self._targ_q_func_forwarder.compute_target(batch.next_observations)
                target = (batch.next_actions * q_next).sum(dim=1, keepdim=True)
            return fqe_step(self, self.compute_loss(batch, target), grad_step)

        @property
        def q_function(self) -> Any:
            return lambda x: self._q_func_forwarder.compute_expected_q(x, reduction="mean")

    return ExpectedDiscreteFQEImpl


def build_fqe(observation_size: int, action_size: int, config: FqeConfig, gamma: float, device: str,
              seed: int) -> Any:
    """A d3rlpy `DiscreteFQE` with the expected-value target, its networks built."""
    import d3rlpy
    from d3rlpy.models.builders import create_discrete_q_function
    from d3rlpy.ope import DiscreteFQE, FQEConfig
    from d3rlpy.ope.torch.fqe_impl import FQEBaseModules

    d3rlpy.seed(seed)
    from ..optimizers import FusedAdamFactory

    fqe_config = FQEConfig(
        learning_rate=config.learning_rate,
        optim_factory=FusedAdamFactory(),  # torch's fused Adam kernel: the same update, faster
        encoder_factory=d3rlpy.models.VectorEncoderFactory(hidden_units=list(config.hidden_units)),
        batch_size=config.batch_size,
        gamma=gamma,
        target_update_interval=config.target_update_interval,
    )
    fqe = DiscreteFQE(algo=None, config=fqe_config, device=device)  # pi comes as probabilities
    shape = (observation_size,)
    q_funcs, forwarder = create_discrete_q_function(
        shape, action_size, fqe_config.encoder_factory, fqe_config.q_func_factory,
        n_ensembles=1, device=fqe._device, enable_ddp=False,
    )
    targ_funcs, targ_forwarder = create_discrete_q_function(
        shape, action_size, fqe_config.encoder_factory, fqe_config.q_func_factory,
        n_ensembles=1, device=fqe._device, enable_ddp=False,
    )
    optim = fqe_config.optim_factory.create(q_funcs.named_modules(), lr=config.learning_rate,
                                           compiled=False)
    impl_class = _expected_fqe_impl_class()
    fqe._impl = impl_class(
        observation_shape=shape, action_size=action_size, algo=None,
        modules=FQEBaseModules(q_funcs=q_funcs, targ_q_funcs=targ_funcs, optim=optim),
        q_func_forwarder=forwarder, targ_q_func_forwarder=targ_forwarder,
        gamma=gamma, target_update_interval=config.target_update_interval, device=fqe._device,
    )
    return fqe


class FqeSampler(TransitionSampler):
    """The training sampler plus the target policy's probabilities at each next state."""

    def __init__(self, arrays: TransitionArrays, next_probs: np.ndarray, batch_size: int, device: str,
                 seed: int) -> None:
        super().__init__(arrays, batch_size, device, seed)
        self._next_probs = self._torch.as_tensor(next_probs, dtype=self._torch.float32).to(device)

    def sample(self) -> Any:
        """One `TorchMiniBatch` whose `next_actions` holds pi(.|s') (B, A)."""
        from d3rlpy.torch_utility import TorchMiniBatch

        torch = self._torch
        idx = torch.randint(self._n, (self.batch_size,), generator=self._generator, device=self.device)
        return TorchMiniBatch(
            observations=self._obs[idx], actions=self._actions[idx], rewards=self._rewards[idx],
            next_observations=self._next_obs[idx], next_actions=self._next_probs[idx],
            returns_to_go=self._ones * 0.0, terminals=self._terminals[idx], intervals=self._ones,
            device=self.device,
        )


def _episode_resample(
    arrays: TransitionArrays, next_probs: np.ndarray, episodes: np.ndarray, seed: int
) -> tuple[TransitionArrays, np.ndarray]:
    """The transitions of a bootstrap resample of episodes (drawn with replacement, seeded)."""
    n_episodes = int(episodes.max()) + 1
    drawn = np.random.default_rng(seed).integers(0, n_episodes, n_episodes)
    take = np.repeat(np.arange(len(episodes)), np.bincount(drawn, minlength=n_episodes)[episodes])
    resampled = TransitionArrays(*(getattr(arrays, f.name)[take] for f in fields(TransitionArrays)))
    return resampled, next_probs[take]


def fit_fqe(
    trajectories_dir: Path | LoadedTrajectories,
    target_probabilities: PolicyProbabilities,
    feature_names: list[str],
    config: FqeConfig,
    *,
    split: str,
    gamma: float,
    seed: int,
    label: str = "FQE",
    n_threads: int = 1,
    show_progress: bool = False,
) -> FittedQ:
    """Fit Q^pi on `split` for the target given as `target_probabilities(frame) -> (n, A)`."""
    return fit_fqe_with_refits(trajectories_dir, target_probabilities, feature_names, config, split=split,
                               gamma=gamma, seed=seed, refits=0, label=label, n_threads=n_threads,
                               show_progress=show_progress)[0]


def fit_fqe_with_refits(
    trajectories_dir: Path | LoadedTrajectories,
    target_probabilities: PolicyProbabilities,
    feature_names: list[str],
    config: FqeConfig,
    *,
    split: str,
    gamma: float,
    seed: int,
    refits: int,
    label: str = "FQE",
    n_threads: int = 1,
    show_progress: bool = False,
) -> list[FittedQ]:
    """The fit on the whole `split`, then `refits` fits on episode-level bootstrap resamples of it
    (each episode's transitions repeated as often as it was drawn; network seed `seed + k`).

    The split is read (or taken from `LoadedTrajectories` read already) and the target's
    probabilities computed once for all fits."""
    data = load_training_data(trajectories_dir, split=split, features=feature_names)
    arrays = data.transitions()
    keep = ~data.episode_ends | data.terminals
    probs = np.asarray(target_probabilities(data.frame[feature_names]), dtype=np.float64)
    next_probs = np.zeros_like(probs)
    next_probs[:-1] = probs[1:]
    next_probs[data.episode_ends] = 0.0  # after a terminal step nothing is bootstrapped
    next_probs = next_probs[keep]
    episodes = pd.factorize(data.frame[c.EPISODE_ID])[0][keep]
    n_features, device = arrays.observations.shape[1], resolve_device(config.device)

    def build(k: int) -> Any:
        return build_fqe(n_features, data.info.n_actions, config, gamma, device, seed + k)

    fits = fit_with_refits(arrays, next_probs, episodes, build, config, seed=seed, refits=refits, label=label,
                           n_threads=n_threads, show_progress=show_progress)
    return [FittedQ(fqe=fqe, scaler=data.scaler, n_steps=config.n_steps, final_loss=loss)
            for fqe, loss in fits]


def fit_with_refits(
    arrays: TransitionArrays, next_targets: np.ndarray, episodes: np.ndarray, build: Any, config: FqeConfig,
    *, seed: int, refits: int, label: str, n_threads: int, show_progress: bool,
) -> list[tuple[Any, float]]:
    """The training loop shared by discrete and continuous FQE: `build(k)` makes the k-th FQE, fit on
    all transitions (k = 0) or on an episode-bootstrap resample (k >= 1); `next_targets` rides in the
    batches' `next_actions` slot (pi(.|s') for discrete FQE, the target's dose at s' for continuous).
    Returns (fitted FQE, last loss) per fit."""
    import torch

    device = resolve_device(config.device)
    threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    fitted = []
    try:
        for k in range(refits + 1):
            fit_arrays, fit_next = arrays, next_targets
            if k:
                resample_seed = (seed + 1) * 100_003 + k
                fit_arrays, fit_next = _episode_resample(arrays, next_targets, episodes, resample_seed)
            fqe = build(k)
            sampler = FqeSampler(fit_arrays, fit_next, config.batch_size, device, seed + k)
            loss = float("nan")
            desc = f"{label} refit {k}" if k else label
            for _ in progress(range(config.n_steps), desc=desc, total=config.n_steps, show=show_progress):
                loss = update_step(fqe, sampler.sample())["loss"]
            fitted.append((fqe, loss))
    finally:
        torch.set_num_threads(threads)
    return fitted
