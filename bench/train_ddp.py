"""DDP training throughput: `dosewise train` in 1 process vs `--ddp N` processes (torchrun, gloo on CPU).

Same data (ICU-Sepsis episodes under the clinicians' policy, 47-d states, 25 actions), same shipped
DiscreteCQL config, same global batch (256: each of N ranks samples 256/N), same steps. Each run is
the real CLI in a fresh process; updates/s is the mean of `train/updates_per_s` over the logged
intervals after the first (rank 0's, excluding start-up and the first compile/allocations).
On a 2-core CPU two ranks split the matrix work but add one gloo all-reduce per step; whether that
pays off depends on the network size, so the table prints both at the shipped [256, 256].

    .venv/bin/python bench/train_ddp.py [--episodes 5000] [--steps 600] [--ddp 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dosewise.data_schemas.console import print_table


def run_train(
    traj: Path, out: Path, steps: int, device: str, ddp: int | None, threads: int
) -> tuple[float, float]:
    """(mean updates/s after the first interval, wall seconds) of one `dosewise train` run."""
    args = [sys.executable, "-m", "dosewise.app.cli", "--quiet", "train", "--no-track", "--trajectories",
            str(traj), "--out", str(out), "--steps", str(steps), "--device", device,
            "--set", f"log_every={max(steps // 6, 1)}", "--set", f"threads={threads}"]
    if ddp:
        args += ["--ddp", str(ddp)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    subprocess.run(args, check=True, env=env)
    wall = time.perf_counter() - start
    with (out / "metrics.csv").open() as handle:
        rates = [float(row["train/updates_per_s"]) for row in csv.DictReader(handle)]
    steady = rates[1:] or rates
    return sum(steady) / len(steady), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--ddp", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    from dosewise.pipelines.simulators.icu_sepsis_episodes import write_icu_sepsis_episodes

    with tempfile.TemporaryDirectory() as tmp:
        traj = Path(tmp) / "episodes"
        write_icu_sepsis_episodes(traj, args.episodes, "clinician", seed=0)
        cores = os.cpu_count() or 1
        rows = []
        for label, ddp, threads in ((f"1 process ({cores} threads)", None, cores),
                                    ("1 process (1 thread)", None, 1),
                                    (f"--ddp {args.ddp} (1 thread each)", args.ddp, 1)):
            out = Path(tmp) / f"p{ddp}-{threads}"
            rate, wall = run_train(traj, out, args.steps, args.device, ddp, threads)
            rows.append([label, f"{rate:,.0f}", f"{rate * 256:,.0f}", f"{wall:.1f}"])
    print_table(f"DiscreteCQL, batch 256 in all, {args.steps} steps, {args.device}, {cores} cores",
                ["run", "updates/s", "transitions/s", "wall s (incl. start-up)"], rows)


if __name__ == "__main__":
    main()
