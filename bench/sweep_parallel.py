"""Sweep on Ray Tune, 2 workers, against the same trials run one after another in this process.

16 trials of the shipped `sweep_demo` (ICU-Sepsis clinician episodes, discrete CQL, WIS on
validation), made 16 by a 4 x 2 grid x 2 seeds. Sequential runs the very same trial function
(`train_and_validate`) in a loop; Ray runs it as Tune trials with max_concurrent = 2 on a local
Ray with 2 CPUs. Both share one behaviour model per sweep (`behaviour.cache_dir`). Reported: wall
time, CPU seconds (sequential: this process; Ray: the CPU each trial's worker process reports for
its own trial, summed, plus this driver's; Ray's GCS and raylet and the workers' start-up imports
are not in it), the sum of the trials' own times, the speed-up, and Ray's overhead per trial =
(Ray wall - sum / 2) x 2 / trials (Ray start shown apart), with the load average. The default
trials (5,000 DiscreteCQL steps) take tens of seconds each, so that Ray's per-trial start-up (a
fresh worker imports torch, d3rlpy, MLflow) does not dominate as it did at 300 steps.

    .venv/bin/python bench/sweep_parallel.py [--episodes 2000] [--steps 5000] [--trials 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dosewise import models
from dosewise.app.sweep import connect_ray, load_sweep_config, resolve_trials, run_sweep
from dosewise.app.sweep.runner import prepare_data, shared_behaviour_cache
from dosewise.app.sweep.trial import train_and_validate
from dosewise.data_schemas.console import print_table

SPACE = '{"algorithm.alpha" = [0.0, 0.1, 0.5, 1.0], "mask.min_count" = [1, 20]}'


def _config(out: Path, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    seeds = "[0, 1]" if args.trials == 16 else f"{list(range(max(1, args.trials // 8)))}"
    return load_sweep_config("sweep_demo", [
        f"out={str(out)!r}", f"data.episodes={args.episodes}", f"train.settings.n_steps={args.steps}",
        f"search.space={SPACE}", f"search.seeds={seeds}", "evaluate.settings.estimators=['WIS']",
        "evaluate.settings.n_bootstrap=200", "selection.estimator='WIS'", "selection.min_ess=1",
    ])


def sequential(out: Path, args: argparse.Namespace) -> tuple[float, float, int]:
    """The trials one after another in this process: (wall s, sum of trial s, trials)."""
    config = _config(out, args)
    _, trials, ope = resolve_trials(config)
    out.mkdir(parents=True, exist_ok=True)
    ope = shared_behaviour_cache(ope, out.resolve())  # as run_sweep does
    data = prepare_data(config, out)
    uri = str(models.local_store_uri(out))
    _, parent = models.start_run(uri, run_name="sequential sweep")
    job = {"out": str(out), "trajectories": str(data), "tracking_uri": uri, "experiment": None,
           "parent_run_id": parent, "ope": ope.model_dump(mode="json"), "split": "validation",
           "estimator": "WIS", "bound": "lower_bound_95"}
    started, total = time.perf_counter(), 0.0
    for index, (settings, train) in enumerate(trials):
        params = {"index": index, "label": str(settings), "train": train.model_dump(mode="json")}
        total += train_and_validate(params, job)["seconds"]
    return time.perf_counter() - started, total, len(trials)


def on_ray(out: Path, args: argparse.Namespace) -> tuple[float, float, float, int, float]:
    """The same trials on Ray Tune, 2 at once: (Ray start s, Tune wall s, sum of trial s, trials,
    CPU s: the trials' own, as each worker measured it, plus this driver's over the sweep)."""
    config = _config(out, args)
    prepare_data(config, out.resolve())  # simulated once, outside the timing, as in `sequential`
    started, driver_cpu = time.perf_counter(), time.process_time()
    connect_ray(None, num_cpus=2)
    ray_start = time.perf_counter() - started
    outcome = run_sweep(config, max_concurrent=2, quiet=True)
    total = sum(r.seconds or 0.0 for r in outcome.rows)
    cpu = sum(r.cpu_seconds or 0.0 for r in outcome.rows) + time.process_time() - driver_cpu
    return ray_start, float(outcome.extra["tune_seconds"]), total, len(outcome.rows), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--trials", type=int, default=16, choices=[8, 16])
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        cpu_before = time.process_time()
        seq_wall, seq_sum, n = sequential(Path(tmp) / "sequential", args)
        seq_cpu, load_mid = time.process_time() - cpu_before, os.getloadavg()[0]
        ray_start, ray_wall, ray_sum, n_ray, ray_cpu = on_ray(Path(tmp) / "ray", args)
    overhead = (ray_wall - ray_sum / 2) * 2 / n_ray
    rows = [("sequential (this process)", n, f"{seq_wall:.1f}", f"{seq_cpu:.0f}", f"{seq_sum:.1f}", "-",
             "1.00x", "-"),
            ("Ray Tune, 2 workers", n_ray, f"{ray_wall:.1f}", f"{ray_cpu:.0f} (trials + driver)",
             f"{ray_sum:.1f}", f"{ray_start:.1f}", f"{seq_wall / ray_wall:.2f}x", f"{overhead:.2f}")]
    print_table(f"Sweep of {n} trials ({args.episodes} ICU-Sepsis episodes, {args.steps} steps each, WIS on "
                f"validation), 2 CPU cores, load average before / between / after {load_before:.1f} / "
                f"{load_mid:.1f} / {os.getloadavg()[0]:.1f}",
                ["mode", "trials", "wall s", "CPU s", "sum of trial s", "Ray start s", "speed-up",
                 "overhead s/trial"], rows)


if __name__ == "__main__":
    main()
