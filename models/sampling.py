"""Vectorised mini-batch sampling that feeds d3rlpy's gradient step directly.

d3rlpy's `fit()` builds each batch one transition at a time in Python (`sample_transition_batch`),
about 40 % of a CPU step and most of a GPU step. Here the whole dataset sits as tensors on the
model's device; a batch is one `torch.randint` plus one gather per field, wrapped in d3rlpy's own
`TorchMiniBatch` and handed to the algorithm implementation's `update` (the same call
`algo.update()` makes after converting numpy arrays). Sampling is uniform over transitions with
replacement, as in d3rlpy, from a seeded generator on the device.
"""

from __future__ import annotations

from typing import Any

from .datasets import TransitionArrays


class TransitionSampler:
    """Uniform random mini-batches of transitions, sampled on `device`."""

    def __init__(self, arrays: TransitionArrays, batch_size: int, device: str, seed: int) -> None:
        import torch

        self._torch = torch
        self.device = device
        self.batch_size = batch_size

        def to(array: Any) -> Any:
            return torch.as_tensor(array, dtype=torch.float32).to(device)

        self._obs = to(arrays.observations)
        self._actions = to(arrays.actions)
        self._rewards = to(arrays.rewards)
        self._next_obs = to(arrays.next_observations)
        self._terminals = to(arrays.terminals)
        self._n = len(arrays)
        self._ones = torch.ones((batch_size, 1), dtype=torch.float32, device=device)
        self._zeros_like_actions = torch.zeros((batch_size, self._actions.shape[1]), device=device)
        self._generator = torch.Generator(device=device)
        self._generator.manual_seed(seed)

    def __len__(self) -> int:
        return self._n

    def sample(self) -> Any:
        """One `TorchMiniBatch` of `batch_size` transitions."""
        from d3rlpy.torch_utility import TorchMiniBatch

        torch = self._torch
        idx = torch.randint(self._n, (self.batch_size,), generator=self._generator, device=self.device)
        return TorchMiniBatch(
            observations=self._obs[idx],
            actions=self._actions[idx],
            rewards=self._rewards[idx],
            next_observations=self._next_obs[idx],
            next_actions=self._zeros_like_actions,
            returns_to_go=self._ones * 0.0,
            terminals=self._terminals[idx],
            intervals=self._ones,
            device=self.device,
        )


def update_step(algo: Any, batch: Any) -> dict[str, float]:
    """One gradient step of `algo` on a ready `TorchMiniBatch` (what `algo.update` does after
    its numpy -> torch conversion, which this path does not need)."""
    metrics: dict[str, float] = algo.impl.update(batch, algo.grad_step)
    algo.set_grad_step(algo.grad_step + 1)
    return metrics


def compile_gradient_steps(algo: Any) -> list[str]:
    """Wrap the implementation's gradient computations (`_compute_*grad`) in `torch.compile`.

    On CUDA, d3rlpy's own `compile_graph=True` (CUDA graphs + compile) is used instead; this is the
    CPU path, where inductor's generated C++ is deterministic run to run. Returns what was wrapped.
    """
    import torch

    impl = algo.impl
    wrapped = []
    for name in sorted(vars(impl)):
        if name.startswith("_compute_") and name.endswith("grad"):
            method = getattr(impl, name.lstrip("_"), None)
            if callable(method):
                setattr(impl, name, torch.compile(method, dynamic=False))
                wrapped.append(name)
    return wrapped
