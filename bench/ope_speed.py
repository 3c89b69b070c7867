"""OPE speed: vectorised bootstrap of WIS + WDR, and FQE updates/s against d3rlpy's own `fit()`.

Goal: 2,000 episode-bootstrap resamples of WIS and WDR on 20,000 episodes of ~18 steps in <= 2 s on
2 cores. The reference is the textbook bootstrap (gather the resampled episodes, recompute each
estimator), timed on a few resamples and scaled to 2,000.

    .venv/bin/python bench/ope_speed.py [--episodes 20000] [--resamples 2000] [--fqe-steps 500]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dosewise.data_schemas.console import print_table
from dosewise.models.ope.bootstrap import bootstrap_intervals
from dosewise.models.ope.doubly_robust import wdr_terms
from dosewise.models.ope.importance_sampling import ImportanceWeights, importance_weights, wis_terms


def synthetic_batch(n: int, seed: int = 0):
    """Episodes of 12..24 steps (mean 18): ratios, survival reward at the end, Q and V in [0, 1]."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(12, 25, n)
    horizon = int(lengths.max())
    mask = np.arange(horizon)[None, :] < lengths[:, None]
    target = np.where(mask, rng.uniform(0.02, 1.0, (n, horizon)), 1.0)
    behaviour = np.where(mask, rng.uniform(0.2, 1.0, (n, horizon)), 1.0)
    rewards = np.zeros((n, horizon))
    rewards[np.arange(n), lengths - 1] = rng.integers(0, 2, n)
    q = np.where(mask, rng.uniform(0, 1, (n, horizon)), 0.0)
    v = np.where(mask, rng.uniform(0, 1, (n, horizon)), 0.0)
    return importance_weights(target, behaviour, mask), rewards, q, v, lengths


def naive_bootstrap(weights: ImportanceWeights, rewards, q, v, n_resamples: int, seed: int) -> float:
    """Seconds per resample of the textbook loop: gather episodes, recompute WIS and WDR."""
    rng = np.random.default_rng(seed)
    n = rewards.shape[0]
    start = time.perf_counter()
    for _ in range(n_resamples):
        picks = rng.integers(0, n, n)
        sub = ImportanceWeights(weights.ratios[picks], weights.cumulative[picks], 0)
        wis_terms(sub, rewards[picks], 1.0).value()
        wdr_terms(sub, rewards[picks], q[picks], v[picks], 1.0).value()
    return (time.perf_counter() - start) / n_resamples


def bench_bootstrap(n: int, resamples: int, repeats: int) -> list[tuple]:
    weights, rewards, q, v, lengths = synthetic_batch(n)
    terms = {"WIS": wis_terms(weights, rewards, 1.0), "WDR": wdr_terms(weights, rewards, q, v, 1.0)}
    times = {"pct": [], "pct+BCa": []}
    for _ in range(repeats):
        for label, bca in (("pct", False), ("pct+BCa", True)):
            t0 = time.perf_counter()
            bootstrap_intervals(terms, n_resamples=resamples, seed=0, bca=bca)
            times[label].append(time.perf_counter() - t0)
    per_naive = naive_bootstrap(weights, rewards, q, v, 20, seed=0)
    rows = [(f"counts@terms {label}", n, f"{lengths.mean():.1f}", resamples, f"{min(t):.3f}",
             f"{np.median(t):.3f}", "yes" if min(t) <= 2.0 else "NO")
            for label, t in times.items()]
    rows.append(("loop (20, scaled)", n, f"{lengths.mean():.1f}", resamples, f"{per_naive * resamples:.1f}",
                 "-", f"x{per_naive * resamples / min(times['pct']):.0f} slower"))
    return rows


def bench_fqe(steps: int, episodes: int) -> list[tuple]:
    import torch
    from d3rlpy.algos import DiscreteCQLConfig
    from d3rlpy.logging import NoopAdapterFactory
    from d3rlpy.models import VectorEncoderFactory
    from d3rlpy.ope import DiscreteFQE, FQEConfig

    from dosewise.models.datasets import load_training_data
    from dosewise.models.device import quiet_d3rlpy
    from dosewise.models.ope.config import FqeConfig
    from dosewise.models.ope.fqe import FqeSampler, build_fqe
    from dosewise.models.sampling import update_step
    from dosewise.pipelines import write_icu_sepsis_episodes

    quiet_d3rlpy()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_icu_sepsis_episodes(Path(tmp), episodes, seed=0)
        data = load_training_data(Path(tmp), split="train")
        arrays = data.transitions()
        probs = np.full((len(arrays), data.info.n_actions), 1.0 / data.info.n_actions)
        config = FqeConfig(n_steps=steps, batch_size=256, hidden_units=[128, 128])
        fqe = build_fqe(arrays.observations.shape[1], data.info.n_actions, config, 1.0, "cpu:0", 0)
        sampler = FqeSampler(arrays, probs, 256, "cpu:0", 0)
        for _ in range(20):
            update_step(fqe, sampler.sample())
        t0 = time.perf_counter()
        for _ in range(steps):
            update_step(fqe, sampler.sample())
        ours = steps / (time.perf_counter() - t0)

        dataset = data.mdp_dataset()
        algo = DiscreteCQLConfig(encoder_factory=VectorEncoderFactory([128, 128])).create(device="cpu:0")
        algo.build_with_dataset(dataset)
        d3 = DiscreteFQE(algo=algo, config=FQEConfig(batch_size=256, gamma=1.0,
                                                      encoder_factory=VectorEncoderFactory([128, 128])),
                         device="cpu:0")
        kwargs = dict(n_steps_per_epoch=steps, show_progress=False, logger_adapter=NoopAdapterFactory(),
                      save_interval=10**9)
        d3.fit(dataset, n_steps=20, **{**kwargs, "n_steps_per_epoch": 20})
        t0 = time.perf_counter()
        d3.fit(dataset, n_steps=steps, **kwargs)
        theirs = steps / (time.perf_counter() - t0)
    rows.append(("dosewise sampler", len(arrays), steps, f"{ours:.0f}", f"x{ours / theirs:.2f}"))
    rows.append(("d3rlpy fit()", len(arrays), steps, f"{theirs:.0f}", "x1.00"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20000)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fqe-steps", type=int, default=500)
    parser.add_argument("--fqe-episodes", type=int, default=5000)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"cores: {os.cpu_count()}, load average (1 min) at start: {load:.2f}")
    print_table("Episode bootstrap of WIS + WDR (shared resamples)",
                ["method", "episodes", "steps", "resamples", "best s", "median s", "<= 2 s"],
                bench_bootstrap(args.episodes, args.resamples, args.repeats))
    print_table("FQE gradient updates per second (batch 256, MLP 128-128, 1 torch thread, CPU)",
                ["path", "transitions", "steps", "updates/s", "vs fit()"],
                bench_fqe(args.fqe_steps, args.fqe_episodes))


if __name__ == "__main__":
    main()
