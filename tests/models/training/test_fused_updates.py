"""The fused updates compute d3rlpy's own loss and update, and apply only where they fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dosewise.models.config import TrainConfig
from dosewise.models.datasets import TransitionArrays
from dosewise.models.device import seed_everything
from dosewise.models.fused_updates import FusedDiscreteCQLImpl, fused_parts
from dosewise.models.policy import build_algo
from dosewise.models.sampling import TransitionSampler, update_step

N_FEATURES, N_ACTIONS = 6, 5


def _arrays(n: int = 512, seed: int = 0) -> TransitionArrays:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    ends = (np.arange(n) % 8) == 7
    next_obs = np.roll(obs, -1, axis=0)
    next_obs[ends] = 0.0
    actions = rng.integers(0, N_ACTIONS, n).astype(np.float32)[:, None]
    rewards = (ends & (rng.random(n) < 0.6)).astype(np.float32)[:, None]
    return TransitionArrays(obs, actions, rewards, next_obs, ends.astype(np.float32)[:, None])


def _algo(name: str, fuse: bool = True, **settings: object) -> object:
    config = TrainConfig.model_validate({"device": "cpu", "batch_size": 64, "fuse_updates": fuse,
                                         "algorithm": {"name": name, "hidden_units": [32, 32], **settings}})
    seed_everything(0, "cpu:0")
    return build_algo(config, N_FEATURES, N_ACTIONS, "cpu:0")


def _adam_is_fused(algo: object) -> bool:
    return bool(algo.impl.modules.optim.optim.defaults["fused"])


def _weights(algo: object) -> list[torch.Tensor]:
    return [p.detach().clone() for p in algo.impl.q_function.parameters()]


def test_fused_cql_loss_and_steps_match_d3rlpy() -> None:
    reference, fused = _algo("discrete_cql", fuse=False, alpha=0.7), _algo("discrete_cql", alpha=0.7)
    assert fused_parts(fused) == ["discrete_cql_loss"] and fused_parts(reference) == []
    # a subclass of d3rlpy's implementation, not a method bound on the instance
    assert type(fused.impl) is FusedDiscreteCQLImpl and "compute_loss" not in vars(fused.impl)
    assert _adam_is_fused(fused) and not _adam_is_fused(reference)
    batch = TransitionSampler(_arrays(), 64, "cpu:0", seed=1).sample()
    q_tpn = reference.impl.compute_target(batch)
    want, got = reference.impl.compute_loss(batch, q_tpn), fused.impl.compute_loss(batch, q_tpn)
    for field in ("loss", "td_loss", "conservative_loss"):
        assert torch.allclose(getattr(want, field), getattr(got, field), rtol=1e-6, atol=1e-7), field
    # 30 full steps on the same batches: the weights stay equal up to float rounding
    sampler_a = TransitionSampler(_arrays(), 64, "cpu:0", seed=2)
    sampler_b = TransitionSampler(_arrays(), 64, "cpu:0", seed=2)
    for _ in range(30):
        update_step(reference, sampler_a.sample())
        update_step(fused, sampler_b.sample())
    for a, b in zip(_weights(reference), _weights(fused), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    untrained = _weights(_algo("discrete_cql", False))
    assert not all(torch.equal(a, b) for a, b in zip(_weights(reference), untrained, strict=True))


@pytest.mark.parametrize(("name", "settings", "expected"), [
    ("discrete_cql", {"n_critics": 2}, []),  # an ensemble keeps d3rlpy's loss
    ("double_dqn", {}, []),
])
def test_fuse_updates_applies_only_where_it_fits(name: str, settings: dict, expected: list[str]) -> None:
    algo = _algo(name, **settings)
    assert fused_parts(algo) == expected
    assert _adam_is_fused(algo)  # d3rlpy's optimizer extension point: FusedAdamFactory in the config


def test_fuse_updates_false_keeps_d3rlpys_adam() -> None:
    from d3rlpy.optimizers import AdamFactory

    from dosewise.models.optimizers import FusedAdamFactory, with_fused_adam

    algo = _algo("double_dqn", fuse=False)
    assert not _adam_is_fused(algo)
    assert type(algo.config.optim_factory) is AdamFactory
    swapped = with_fused_adam(algo.config)
    assert type(swapped.optim_factory) is FusedAdamFactory and swapped.optim_factory.betas == (0.9, 0.999)
