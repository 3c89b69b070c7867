"""`dosewise etl chemo` speed and memory on synthetic OMOP CDM folders of 1k, 10k and 100k patients.

For each size and file format (csv.gz, parquet), in fresh subprocesses so each peak RSS is that
step's own:
  1. `write_synthetic_oncology --format omop` (simulation + writing, not part of the goal);
  2. `run_chemo_pipeline` with the shipped `chemo_omop` config: OMOP table rows per second end to
     end, patients per second, wall and CPU seconds, peak RSS;
  3. a reference: pandas `read_csv` / `read_parquet` of `measurement` alone (what the pandas reader
     this replaced held before its first join), same file, same run.
The OMOP tables are read, checked and joined in DuckDB under `input.duckdb_memory_limit`
(`--memory-limit`); the cycle-level rows then go through the shared pandas stages in batches of
`input.batch_patients` (`--batch-patients`), so peak RSS is bounded by the two settings. The load
average (1 min) before and after each ETL run is printed beside it: the goal is for 2 free cores.
Goal (issue 15): 100,000 patients in under a minute on 2 cores, with RSS bounded as the input grows.

    .venv/bin/python bench/etl_chemo.py                          # 1k, 10k, 100k; csv.gz and parquet
    .venv/bin/python bench/etl_chemo.py --sizes 1000,10000 --formats parquet
    .venv/bin/python bench/etl_chemo.py --workdir /tmp/chemo-bench --reuse   # generate once, rerun
    .venv/bin/python bench/etl_chemo.py --sizes 100000,300000 --formats parquet --memory-limit 512MB
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dosewise.data_schemas.console import print_table

PEAK = """
import re
def peak_gb():
    status = open("/proc/self/status").read()
    return int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)) / 2**20
"""
GENERATE = (
    PEAK
    + """
import json, sys, time
from dosewise.pipelines import write_synthetic_oncology
start = time.perf_counter()
m = write_synthetic_oncology(sys.argv[1], int(sys.argv[2]), seed=0, fmt="omop", file_format=sys.argv[3])
print(json.dumps({"seconds": time.perf_counter() - start, "rss_gb": peak_gb()}))
"""
)
ETL = (
    PEAK
    + """
import json, resource, sys, time
from dosewise.data_schemas import load_config
from dosewise.pipelines import ChemoPipelineConfig, config_folder, run_chemo_pipeline
config = load_config("chemo_omop", ChemoPipelineConfig, ["output.id_salt=bench-salt-not-secret",
                     f"input.duckdb_memory_limit={sys.argv[3]}", f"input.batch_patients={sys.argv[4]}"],
                     search=[config_folder()])
def cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
start, cpu0 = time.perf_counter(), cpu_s()
m = run_chemo_pipeline(config, sys.argv[1], sys.argv[2], show_progress=False)
print(json.dumps({"seconds": time.perf_counter() - start, "cpu_seconds": cpu_s() - cpu0,
                  "rows_in": m.stages[0].rows_in, "cycles": m.stages[-1].rows_out,
                  "patients": m.extra["n_episodes"], "stages": {s.name: s.seconds for s in m.stages},
                  "rss_gb": peak_gb()}))
"""
)
PANDAS = (
    PEAK
    + """
import json, sys, time
import pandas as pd
start = time.perf_counter()
path = sys.argv[1]
frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
print(json.dumps({"seconds": time.perf_counter() - start, "rows": len(frame), "rss_gb": peak_gb()}))
"""
)


def run(code: str, *args: str) -> dict[str, object]:
    """Run `code` in a fresh interpreter (2 threads at most) and parse its JSON line."""
    env = {**os.environ, "OMP_NUM_THREADS": "2", "POLARS_MAX_THREADS": "2"}
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True
    )
    last = out.stdout[out.stdout.rindex('{"seconds"'):]  # the JSON line, whatever was printed before it
    result: dict[str, object] = json.loads(last.splitlines()[0])
    return result


def main() -> None:
    """Measure every size x format and print one table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000", help="Comma-separated patient counts.")
    parser.add_argument("--formats", default="csv.gz,parquet", help="csv.gz and/or parquet.")
    parser.add_argument("--workdir", type=Path, default=None, help="Where to generate (default: a temp dir).")
    parser.add_argument("--reuse", action="store_true", help="Skip generating a folder that has a manifest.")
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB memory limit of the ETL runs.")
    parser.add_argument("--batch-patients", type=int, default=20_000, help="input.batch_patients of the ETL.")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="chemo-bench-"))
    rows = []
    for fmt in args.formats.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            src, out = work / f"omop_{fmt}_{n}", work / f"traj_{fmt}_{n}"
            gen = {"seconds": float("nan")}
            if not (args.reuse and (src / "manifest.json").exists()):
                gen = run(GENERATE, str(src), str(n), fmt)
            shutil.rmtree(out, ignore_errors=True)  # a fresh output folder: no earlier run's salt to compare
            load0 = os.getloadavg()[0]
            etl = run(ETL, str(src), str(out), args.memory_limit, str(args.batch_patients))
            load1 = os.getloadavg()[0]
            ref = run(PANDAS, str(src / f"measurement.{fmt}"))
            secs = float(etl["seconds"])  # type: ignore[arg-type]
            rows.append(
                (
                    f"{n:,}",
                    fmt,
                    f"{int(etl['rows_in']):,}",
                    f"{int(etl['cycles']):,}",  # type: ignore[call-overload]
                    f"{secs:.1f}",
                    f"{float(etl['cpu_seconds']):.1f}",  # type: ignore[arg-type]
                    f"{int(etl['rows_in']) / secs:,.0f}",
                    f"{n / secs:,.0f}",  # type: ignore[call-overload]
                    f"{float(etl['rss_gb']):.2f}",
                    f"{load0:.1f} / {load1:.1f}",
                    f"{float(ref['seconds']):.1f}",  # type: ignore[arg-type]
                    f"{float(ref['rss_gb']):.2f}",
                    f"{float(gen['seconds']):.0f}",  # type: ignore[arg-type]
                    "yes" if n < 100_000 or secs < 60 else f"no ({secs / 60:.1f} min)",
                )
            )
    print_table(
        f"etl chemo on synthetic OMOP (2 threads, DuckDB memory limit {args.memory_limit}, "
        f"batches of {args.batch_patients:,} patients; {os.cpu_count()} CPUs)",
        [
            "patients",
            "format",
            "table rows in",
            "cycles out",
            "wall s",
            "CPU s",
            "rows/s",
            "patients/s",
            "peak RSS GB",
            "load avg before / after",
            "pandas read measurement s",
            "pandas RSS GB",
            "generate s",
            "100k < 1 min",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
