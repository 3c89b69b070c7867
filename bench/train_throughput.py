"""Training throughput: gradient updates/s through Dosewise's vectorised sampler vs d3rlpy's `fit()`.

Columns: d3rlpy's `fit()`; the vectorised sampler feeding d3rlpy's unchanged update ("sampler
only"); the default `dosewise train` path (sampler + fused updates, "ours"); the same compiled.
Same data (200k transitions, 48-d states, 10k terminal episodes of 20 steps), same algorithm
configs (Dosewise's shipped settings, batch 256), same process. The two paths run in alternating
blocks so that load from other jobs on the machine hits all alike. Goal on the CPU: DiscreteCQL
>= 2.5x `fit()`; on one GPU >= 10x `fit()` and >= 5,000 updates/s.

    .venv/bin/python bench/train_throughput.py [--steps 200] [--repeats 2] [--device auto]
        [--algos discrete_cql,dqn,...] [--compile discrete_cql] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dosewise.data_schemas.console import print_table
from dosewise.models.algorithms import CONTINUOUS_ALGORITHMS, DISCRETE_ALGORITHMS
from dosewise.models.config import TrainConfig
from dosewise.models.datasets import TransitionArrays
from dosewise.models.device import quiet_d3rlpy, resolve_device, seed_everything
from dosewise.models.policy import build_algo
from dosewise.models.sampling import TransitionSampler, compile_gradient_steps, update_step

N_TRANSITIONS, N_FEATURES, EPISODE_STEPS, BATCH = 200_000, 48, 20, 256


def make_data(continuous: bool, seed: int = 0) -> tuple[TransitionArrays, object]:
    """The same transitions as Dosewise arrays and as a d3rlpy `MDPDataset`."""
    from d3rlpy.constants import ActionSpace
    from d3rlpy.dataset import MDPDataset

    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(N_TRANSITIONS, N_FEATURES)).astype(np.float32)
    ends = (np.arange(N_TRANSITIONS) % EPISODE_STEPS) == EPISODE_STEPS - 1
    rewards = (ends & (rng.random(N_TRANSITIONS) < 0.78)).astype(np.float32)
    if continuous:
        actions = rng.uniform(-1, 1, (N_TRANSITIONS, 2)).astype(np.float32)
    else:
        actions = rng.integers(0, 25, N_TRANSITIONS).astype(np.float32)[:, None]
    next_obs = np.zeros_like(obs)
    next_obs[:-1] = obs[1:]
    next_obs[ends] = 0.0
    arrays = TransitionArrays(obs, actions, rewards[:, None], next_obs, ends.astype(np.float32)[:, None])
    dataset = MDPDataset(
        observations=obs, actions=actions if continuous else actions[:, 0].astype(np.int64),
        rewards=rewards, terminals=ends.astype(np.float32),
        action_space=ActionSpace.CONTINUOUS if continuous else ActionSpace.DISCRETE,
        action_size=2 if continuous else 25,
    )
    return arrays, dataset


def fresh_algo(name: str, device: str, compiled: bool = False, fused: bool = False) -> object:
    """A freshly built algorithm; `fused` applies Dosewise's fused updates as `dosewise train` does."""
    config = TrainConfig.model_validate({"device": device, "batch_size": BATCH, "compile": compiled,
                                         "algorithm": {"name": name}})
    seed_everything(0, device)
    n_actions = 2 if name in CONTINUOUS_ALGORITHMS else 25
    return build_algo(config, N_FEATURES, n_actions, device, fused_loss=fused)


def time_fit(algo: object, dataset: object, steps: int) -> float:
    from d3rlpy.logging import NoopAdapterFactory

    start = time.perf_counter()
    algo.fit(dataset, n_steps=steps, n_steps_per_epoch=steps, logger_adapter=NoopAdapterFactory(),
             show_progress=False)
    return time.perf_counter() - start


def time_dosewise(algo: object, sampler: TransitionSampler, steps: int, sync: bool) -> float:
    import torch

    start = time.perf_counter()
    for _ in range(steps):
        update_step(algo, sampler.sample())
    if sync:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench(name: str, device: str, steps: int, repeats: int, compiled: bool) -> tuple:
    arrays, dataset = make_data(name in CONTINUOUS_ALGORITHMS)
    cuda = device.startswith("cuda")
    fit_algo, plain = fresh_algo(name, device), fresh_algo(name, device)
    ours = fresh_algo(name, device, fused=True)
    sampler = TransitionSampler(arrays, BATCH, device, seed=0)
    time_fit(fit_algo, dataset, 10)  # warm-up: impl built, first kernels run
    time_dosewise(plain, sampler, 10, cuda)
    time_dosewise(ours, sampler, 10, cuda)
    fit_s = plain_s = ours_s = 0.0
    for _ in range(repeats):
        fit_s += time_fit(fit_algo, dataset, steps)
        plain_s += time_dosewise(plain, sampler, steps, cuda)
        ours_s += time_dosewise(ours, sampler, steps, cuda)
    n = steps * repeats
    row = [name, device, f"{n / fit_s:.0f}", f"{n / plain_s:.0f}", f"{n / ours_s:.0f}",
           f"{fit_s / ours_s:.2f}x"]
    if compiled:
        comp = fresh_algo(name, device, compiled=True, fused=True)
        if not cuda:
            compile_gradient_steps(comp)
        warm = time_dosewise(comp, sampler, 20, cuda)
        comp_s = sum(time_dosewise(comp, sampler, steps, cuda) for _ in range(repeats))
        row += [f"{n / comp_s:.0f}", f"{fit_s / comp_s:.2f}x", f"{warm:.0f}s"]
    else:
        row += ["-", "-", "-"]
    return tuple(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="updates per timed block")
    parser.add_argument("--repeats", type=int, default=2, help="alternating blocks per path")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--algos", default=",".join(DISCRETE_ALGORITHMS + CONTINUOUS_ALGORITHMS))
    parser.add_argument("--compile", default="discrete_cql", help="algorithms also timed compiled")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    quiet_d3rlpy()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    compiled = set(filter(None, args.compile.split(",")))
    rows = [bench(name, device, args.steps, args.repeats, name in compiled)
            for name in args.algos.split(",")]
    print_table(
        f"Updates/s, batch {BATCH}, {N_TRANSITIONS:,} transitions x {N_FEATURES} features, "
        f"torch threads {torch.get_num_threads()}",
        ["algo", "device", "fit()/s", "sampler only/s", "ours/s", "ratio", "compiled/s", "ratio", "warm-up"],
        rows,
    )


if __name__ == "__main__":
    main()
