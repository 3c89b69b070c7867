"""Fitted Q Evaluation for continuous doses with d3rlpy's (continuous) `FQE`.

d3rlpy's FQE asks a d3rlpy algorithm for the next action. Dosewise evaluates any `Policy` (a
trained actor, "always full dose", the clinicians), so the next dose comes precomputed in the
batch's `next_actions` slot: the target's recommended dose at s' (deterministic target, Le et al.
2019), or the logged next dose for the clinicians (SARSA: the behaviour policy's own next action).
Doses enter the Q-network scaled to [-1, 1] by the fit split's dose range, as in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dosewise.data_schemas import columns as c

from ..datasets import DoseScaler, LoadedTrajectories, StateScaler, load_training_data
from ..device import resolve_device
from .config import FqeConfig
from .fqe import fit_with_refits, fqe_step

DoseFunction = Callable[[pd.DataFrame], np.ndarray]  # states frame -> (n, k) doses in units


@dataclass
class FittedContinuousQ:
    """Q^pi(s, a) for doses in units, fitted for one target."""

    fqe: Any
    scaler: StateScaler
    dose_scaler: DoseScaler
    final_loss: float

    def q_at(self, states: pd.DataFrame, doses: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """(n,) estimated Q(s, a) at the given doses (units)."""
        import torch

        obs = self.scaler.transform(states)
        act = self.dose_scaler.to_unit(np.asarray(doses, dtype=np.float64).reshape(len(obs), -1))
        forwarder = self.fqe.impl.q_function
        out = []
        with torch.no_grad():
            for start in range(0, len(obs), chunk):
                x = torch.as_tensor(obs[start:start + chunk], device=self.fqe.impl.device)
                a = torch.as_tensor(act[start:start + chunk], device=self.fqe.impl.device)
                out.append(forwarder(x, a).cpu().numpy().reshape(-1))
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def _impl_class() -> type:
    from d3rlpy.ope.torch.fqe_impl import FQEImpl

    class GivenNextActionFQEImpl(FQEImpl):  # type: ignore[misc]
        """Continuous FQE whose next action is the batch's `next_actions` (no d3rlpy algo needed)."""

        def inner_update(self, batch: Any, grad_step: int) -> dict[str, float]:
            target = self.compute_target(batch, batch.next_actions)
            return fqe_step(self, self.compute_loss(batch, target), grad_step)

        @property
        def q_function(self) -> Any:
            return lambda x, a: self._q_func_forwarder.compute_expected_q(x, a, reduction="mean")

    return GivenNextActionFQEImpl


def build_continuous_fqe(observation_size: int, action_size: int, config: FqeConfig, gamma: float,
                         device: str, seed: int) -> Any:
    """A d3rlpy `FQE` (continuous Q(s, a)) with its networks built and the given-next-action target."""
    import d3rlpy
    from d3rlpy.models.builders import create_continuous_q_function
    from d3rlpy.ope import FQE, FQEConfig
    from d3rlpy.ope.torch.fqe_impl import FQEBaseModules

    d3rlpy.seed(seed)
    fqe_config = FQEConfig(
        learning_rate=config.learning_rate,
        encoder_factory=d3rlpy.models.VectorEncoderFactory(hidden_units=list(config.hidden_units)),
        batch_size=config.batch_size, gamma=gamma, target_update_interval=config.target_update_interval,
    )
    fqe = FQE(algo=None, config=fqe_config, device=device)
    shape = (observation_size,)
    made = [create_continuous_q_function(shape, action_size, fqe_config.encoder_factory,
                                         fqe_config.q_func_factory, n_ensembles=1, device=fqe._device,
                                         enable_ddp=False) for _ in range(2)]
    (q_funcs, forwarder), (targ_funcs, targ_forwarder) = made
    optim = fqe_config.optim_factory.create(q_funcs.named_modules(), lr=config.learning_rate, compiled=False)
    fqe._impl = _impl_class()(
        observation_shape=shape, action_size=action_size, algo=None,
        modules=FQEBaseModules(q_funcs=q_funcs, targ_q_funcs=targ_funcs, optim=optim),
        q_func_forwarder=forwarder, targ_q_func_forwarder=targ_forwarder,
        gamma=gamma, target_update_interval=config.target_update_interval, device=fqe._device,
    )
    return fqe


def fit_continuous_fqe(
    trajectories_dir: Path | LoadedTrajectories, target_doses: DoseFunction | None, feature_names: list[str],
    config: FqeConfig,
    *, split: str, gamma: float, seed: int, refits: int = 0, label: str = "FQE", n_threads: int = 1,
    show_progress: bool = False,
) -> list[FittedContinuousQ]:
    """Fit Q^pi on `split` for a deterministic target `target_doses(frame) -> (n, k)` doses, or for
    the clinicians (`target_doses=None`: the logged next dose). The whole split first, then `refits`
    fits on episode-bootstrap resamples (network seed `seed + k`)."""
    data = load_training_data(trajectories_dir, split=split, features=feature_names,
                              action_space="continuous")
    if data.dose_scaler is None:  # load_training_data refuses continuous data without dose columns
        raise RuntimeError("continuous training data without a dose scaler")
    dose_scaler = data.dose_scaler
    arrays = data.transitions()
    keep = ~data.episode_ends | data.terminals
    if target_doses is None:
        unit = data.actions.astype(np.float64)
    else:
        unit = dose_scaler.to_unit(np.asarray(target_doses(data.frame), dtype=np.float64))
    next_unit = np.zeros_like(unit)
    next_unit[:-1] = unit[1:]
    next_unit[data.episode_ends] = 0.0  # nothing is bootstrapped after the last step
    episodes = pd.factorize(data.frame[c.EPISODE_ID])[0][keep]
    n_features, n_doses, device = arrays.observations.shape[1], unit.shape[1], resolve_device(config.device)

    def build(k: int) -> Any:
        return build_continuous_fqe(n_features, n_doses, config, gamma, device, seed + k)

    fits = fit_with_refits(arrays, next_unit[keep], episodes, build, config, seed=seed, refits=refits,
                           label=label, n_threads=n_threads, show_progress=show_progress)
    return [FittedContinuousQ(fqe, data.scaler, dose_scaler, loss) for fqe, loss in fits]
