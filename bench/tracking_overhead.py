"""What MLflow tracking and pyfunc serving cost, against d3rlpy's no-op logger and the bare policy.

Trains the same tiny policy three times: with d3rlpy's `NoopAdapterFactory` (the library path, no
tracking), with `MLflowAdapterFactory` into a local sqlite store, and (with --server) into a
running `mlflow server`. Then times `predict` of the registered pyfunc model against calling the
policy directly on the same rows. Prints one table.

    .venv/bin/python bench/tracking_overhead.py [--steps 500] [--log-every 50] [--server URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd


class TimedFactory:
    """Wraps a d3rlpy logger factory and adds up the seconds spent inside its adapter's calls."""

    def __init__(self, factory: Any) -> None:
        self.factory, self.seconds, self.calls = factory, 0.0, 0

    def create(self, algo: Any, experiment_name: str, n_steps_per_epoch: int) -> Any:
        adapter = self.factory.create(algo, experiment_name, n_steps_per_epoch)
        timed = self

        class Timed:
            def __getattr__(self, name: str) -> Any:
                method = getattr(adapter, name)

                def call(*args: Any) -> Any:
                    started = time.perf_counter()
                    try:
                        return method(*args)
                    finally:
                        timed.seconds += time.perf_counter() - started
                        timed.calls += 1
                return call

        return Timed()


def _median_seconds(call: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _train(trajectories: Path, out: Path, steps: int, log_every: int, factory: object) -> float:
    from dosewise.models import TrainConfig, train_policy

    config = TrainConfig.model_validate({"n_steps": steps, "log_every": log_every, "batch_size": 64,
                                         "algorithm": {"name": "discrete_cql", "hidden_units": [64, 64]}})
    started = time.perf_counter()
    train_policy(trajectories, config, out_dir=out, logger_factory=factory, show_progress=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--rows", type=int, default=10_000, help="Rows for the predict timing.")
    parser.add_argument("--repeats", type=int, default=5, help="Repeats of each predict timing.")
    parser.add_argument("--server", default=None, help="URL of a running mlflow server to include.")
    args = parser.parse_args()

    import mlflow
    from d3rlpy.logging import NoopAdapterFactory

    from dosewise.data_schemas.console import print_table
    from dosewise.models import MLflowAdapterFactory, load_policy, register_policy
    from dosewise.models.tracking.runs import log_training_outputs, start_run
    from dosewise.models.tracking.stores import local_store_uri, resolve_store, using_store
    from dosewise.pipelines import write_icu_sepsis_episodes

    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        write_icu_sepsis_episodes(tmp / "traj", n_episodes=500, seed=0)
        intervals = args.steps // args.log_every
        noop = TimedFactory(NoopAdapterFactory())
        seconds = _train(tmp / "traj", tmp / "p0", args.steps, args.log_every, noop)
        rows.append(("train, d3rlpy NoopAdapterFactory", f"{seconds:.2f} s",
                     f"{noop.seconds / intervals * 1000:.2f} ms in the logger per interval"))
        stores = [("local sqlite", local_store_uri(tmp / "store"))]
        if args.server:
            stores.append(("mlflow server", args.server))
        for label, uri in stores:
            _, run_id = start_run(uri, run_name="bench")
            timed = TimedFactory(MLflowAdapterFactory(run_id, tracking_uri=uri))
            seconds = _train(tmp / "traj", tmp / f"p-{label}", args.steps, args.log_every, timed)
            rows.append((f"train, MLflowAdapterFactory ({label})", f"{seconds:.2f} s",
                         f"{timed.seconds / intervals * 1000:.2f} ms in the logger per interval "
                         f"({intervals} intervals of {args.log_every} steps)"))
        uri = stores[0][1]
        _, run_id = start_run(uri, run_name="bench-register")
        log_training_outputs(run_id, tmp / "p0", tracking_uri=uri)
        started = time.perf_counter()
        register_policy(run_id, "bench-policy", alias="candidate", tracking_uri=uri)
        rows.append(("register_policy (local sqlite)", f"{time.perf_counter() - started:.2f} s", "-"))

        frame = pd.read_parquet(tmp / "traj" / "trajectories.parquet")
        policy = load_policy(tmp / "p0")
        states = frame[policy.feature_names].sample(args.rows, replace=True, random_state=0)
        states = states.reset_index(drop=True)
        with using_store(resolve_store(uri)):
            model = mlflow.pyfunc.load_model("models:/bench-policy@candidate")
        model.predict(states.head(5))  # warm both paths once
        direct = _median_seconds(lambda: (policy.recommend(states), policy.q_values(states)), args.repeats)
        served = _median_seconds(lambda: model.predict(states), args.repeats)
        rows.append((f"policy.recommend + q_values, {args.rows} rows", f"{direct * 1000:.0f} ms",
                     f"median of {args.repeats}"))
        rows.append((f"pyfunc predict (schema check + same), {args.rows} rows", f"{served * 1000:.0f} ms",
                     f"median of {args.repeats}; {served / max(direct, 1e-9):.2f}x the direct calls"))
    print_table("Tracking and serving overhead", ["what", "time", "note"], rows)


if __name__ == "__main__":
    main()
