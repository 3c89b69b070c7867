"""End-to-end sepsis ETL speed and memory on synthetic MIMIC-IV at 10^5, 10^6 and 10^7 chartevents rows.

Each size is measured in fresh subprocesses so every peak RSS is that step's own:
  1. `write_synthetic_icu` (generator throughput: rows written per second, all tables);
  2. `run_sepsis_pipeline` with the shipped `sepsis_mimic4` config (chartevents rows per second
     end to end, peak RSS of the process, DuckDB included);
  3. a reference: pandas `read_csv` of the same `chartevents.csv.gz` alone (no concepts, no
     cohort), the usual first step of today's Python pipelines.
Goal (issue 4): >= 1 M chartevents rows/s on 2 cores, linear growth, peak RSS <= 6 GB.
CPU seconds (user + sys, all threads) per 1 M rows are printed next to wall rows/s: on a machine shared
with other processes wall time is pessimistic, CPU time is not. `--reuse` keeps generated data in
`--workdir` and skips generating a size whose folder already holds a manifest.

    .venv/bin/python bench/etl_sepsis.py                      # 1e5, 1e6, 1e7 rows
    .venv/bin/python bench/etl_sepsis.py --sizes 100000,1000000 --no-pandas
    .venv/bin/python bench/etl_sepsis.py --workdir /tmp/etl-bench --reuse --no-pandas
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from dosewise.data_schemas.console import print_table

# Peak RSS is read from /proc/self/status VmHWM: this process image's own high-water mark
# (ru_maxrss would also count the parent's RSS at fork time).
PEAK = """
import re
def peak_gb():
    status = open("/proc/self/status").read()
    return int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)) / 2**20
"""
GENERATE = PEAK + """
import json, sys, time
from dosewise.pipelines import write_synthetic_icu
start = time.perf_counter()
m = write_synthetic_icu(sys.argv[1], int(sys.argv[2]), seed=int(sys.argv[3]), show_progress=False)
print(json.dumps({"seconds": time.perf_counter() - start, "rows": m.extra["rows"],
                  "rss_gb": peak_gb()}))
"""
ETL = PEAK + """
import json, resource, sys, time
from dosewise.data_schemas import load_config
from dosewise.pipelines import SepsisPipelineConfig, config_folder, run_sepsis_pipeline
config = load_config(sys.argv[3], SepsisPipelineConfig, search=[config_folder()])
def cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process, DuckDB's included
    return usage.ru_utime + usage.ru_stime
start, cpu_start = time.perf_counter(), cpu_s()
m = run_sepsis_pipeline(config, sys.argv[1], sys.argv[2], show_progress=False)
seconds, cpu = time.perf_counter() - start, cpu_s() - cpu_start
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu,
                  "stages": {s.name: s.seconds for s in m.stages},
                  "episodes": m.funnel[-1].remaining if m.funnel else None,
                  "funnel": [[f.rule, f.remaining] for f in m.funnel],
                  "rss_gb": peak_gb()}))
"""
PANDAS = PEAK + """
import json, sys, time
import pandas as pd
start = time.perf_counter()
frame = pd.read_csv(sys.argv[1], parse_dates=["charttime", "storetime"])
print(json.dumps({"seconds": time.perf_counter() - start, "rows": len(frame),
                  "rss_gb": peak_gb()}))
"""


def run_child(code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter and return the JSON it prints last."""
    env = {**os.environ, "DOSEWISE_ID_SALT": os.environ.get("DOSEWISE_ID_SALT", "bench-salt-not-secret")}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def reused(raw: Path) -> dict | None:
    """Row counts of synthetic data generated earlier in `raw` (generator timing unknown), if any."""
    manifest = raw / "manifest.json"
    if not manifest.is_file():
        return None
    return {"seconds": float("nan"), "rows": json.loads(manifest.read_text())["extra"]["rows"],
            "rss_gb": float("nan")}


def rows_per_stay(workdir: Path, seed: int, reuse: bool) -> float:
    """Chartevents rows per ICU stay, measured on a small calibration run."""
    probe = (reused(workdir / "calibration") if reuse else None) or run_child(
        GENERATE, str(workdir / "calibration"), "400", str(seed))
    return probe["rows"]["chartevents"] / 400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000",
                        help="target chartevents rows, comma-separated")
    parser.add_argument("--config", default="sepsis_mimic4", help="ETL config name or TOML path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="keep data here (default: temp)")
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas read_csv reference")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse synthetic data already generated in --workdir (same seed)")
    args = parser.parse_args()
    os.environ.setdefault("COLUMNS", "230")  # rich wraps tables to 80 columns when piped
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="dosewise-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        per_stay = rows_per_stay(workdir, args.seed, args.reuse)
        rows: list[list] = []
        stages: list[tuple[str, dict[str, float]]] = []
        stage_names: list[str] = []
        for target in sizes:
            stays = max(10, round(target / per_stay))
            raw, out = workdir / f"raw_{target}", workdir / f"etl_{target}"
            gen = reused(raw) if args.reuse else None
            gen = gen or run_child(GENERATE, str(raw), str(stays), str(args.seed))
            chart = gen["rows"]["chartevents"]
            etl = run_child(ETL, str(raw), str(out), args.config)
            ref = None if args.no_pandas else run_child(PANDAS, str(raw / "icu" / "chartevents.csv.gz"))
            stages.append((f"{target:.0e}", etl["stages"]))
            stage_names = list(etl["stages"])
            rows.append([
                f"{target:.0e}", f"{stays:,}", f"{chart:,}",
                *(["reused", "reused"] if gen["seconds"] != gen["seconds"] else  # NaN: data reused
                  [f"{sum(gen['rows'].values()) / gen['seconds']:,.0f}", f"{gen['seconds']:.1f}"]),
                f"{etl['seconds']:.1f}", f"{chart / etl['seconds']:,.0f}",
                f"{etl['seconds'] / chart * 1e6:.2f}", f"{etl['cpu_seconds']:.1f}",
                f"{etl['cpu_seconds'] / chart * 1e6:.2f}", f"{etl['rss_gb']:.2f}", etl["episodes"],
                "-" if ref is None else f"{ref['rows'] / ref['seconds']:,.0f}",
                "-" if ref is None else f"{ref['rss_gb']:.2f}",
            ])
            print(json.dumps({"target": target, "stays": stays, "generate": gen, "etl": etl,
                              "pandas": ref}), file=sys.stderr)
    print_table(
        f"Sepsis ETL on synthetic MIMIC-IV ({os.cpu_count()} cores, config {args.config})",
        ["target rows", "stays", "chartevents rows", "generator rows/s (all tables)", "generate s",
         "ETL s", "ETL chartevents rows/s", "ETL s per 1M rows", "ETL CPU s", "ETL CPU s per 1M rows",
         "ETL peak RSS GB", "episodes",
         "pandas read_csv rows/s", "pandas peak RSS GB"],
        rows)
    print_table("ETL seconds per stage (wall)", ["target rows", *stage_names],
                [[size, *(f"{s.get(n, float('nan')):.2f}" for n in stage_names)] for size, s in stages])


if __name__ == "__main__":
    main()
