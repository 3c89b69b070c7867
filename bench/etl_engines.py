"""The concept ETL on DuckDB vs Spark local[2], on synthetic MIMIC-IV at 10^6 and 10^7 chartevents rows.

Both engines run `write_concept_tables` (every concept SQL file: chart/lab measurements, vitals, GCS,
ventilation, urine output, doses, SOFA, Sepsis-3; the Spark run transpiles the same files with
sqlglot) on the same raw `.csv.gz` files, each in a fresh subprocess. Reported per engine and size:
wall seconds, CPU seconds per 1 M chartevents rows (user + sys of the Python process and, for Spark,
of its JVM), and peak RSS (Python process + JVM, each its own high-water mark). The synthetic data
is made by `bench/etl_sepsis.py`'s generator child (same seed, same rows per stay).

    .venv/bin/python bench/etl_engines.py                          # 1e6, 1e7 rows
    .venv/bin/python bench/etl_engines.py --sizes 1000000 --workdir /tmp/etl-bench --reuse
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from etl_sepsis import GENERATE, PEAK, reused, rows_per_stay, run_child

from dosewise.data_schemas.console import print_table

# Spark's JVM is a child of the Python process: its CPU time and VmHWM are read from /proc before
# the interpreter exits (the JVM lives until then).
CONCEPTS = (
    PEAK
    + """
import json, os, resource, sys, time
from dosewise.pipelines.concepts import write_concept_tables
from dosewise.pipelines.sepsis.config import SepsisPipelineConfig
def jvm_children():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            status = open(f"/proc/{pid}/status").read()
        except OSError:
            continue
        if int(stat[1]) == os.getpid():
            hwm = [int(l.split()[1]) for l in status.splitlines() if l.startswith("VmHWM")]
            ticks = os.sysconf("SC_CLK_TCK")
            found.append(((int(stat[11]) + int(stat[12])) / ticks, (hwm[0] if hwm else 0) / 2**20))
    return found
start = time.perf_counter()
config = SepsisPipelineConfig(engine=sys.argv[3])
m = write_concept_tables(sys.argv[1], sys.argv[2], config=config)
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
children = jvm_children()
cpu = usage.ru_utime + usage.ru_stime + sum(c for c, _ in children)
rss = peak_gb() + sum(r for _, r in children)
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rss_gb": rss, "rows": m.extra["rows"]}))
"""
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1000000,10000000", help="target chartevents rows, comma-separated"
    )
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="keep data here (default: temp)")
    parser.add_argument("--reuse", action="store_true", help="reuse data already generated in --workdir")
    args = parser.parse_args()
    os.environ.setdefault("COLUMNS", "200")
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="dosewise-engines-") as tmp:
        workdir = args.workdir or Path(tmp)
        per_stay = rows_per_stay(workdir, args.seed, args.reuse)
        for target in (int(float(s)) for s in args.sizes.split(",")):
            stays = max(10, round(target / per_stay))
            raw = workdir / f"raw_{target}"
            gen = (reused(raw) if args.reuse else None) or run_child(
                GENERATE, str(raw), str(stays), str(args.seed)
            )
            chart = gen["rows"]["chartevents"]
            counts = {}
            for engine in args.engines.split(","):
                result = run_child(CONCEPTS, str(raw), str(workdir / f"{engine}_{target}"), engine)
                counts[engine] = result["rows"]
                rows.append(
                    [
                        f"{target:.0e}",
                        f"{chart:,}",
                        engine,
                        f"{result['seconds']:.1f}",
                        f"{chart / result['seconds']:,.0f}",
                        f"{result['cpu_seconds'] / chart * 1e6:.1f}",
                        f"{result['rss_gb']:.2f}",
                    ]
                )
                print(json.dumps({"target": target, "engine": engine, **result}), file=sys.stderr)
            if len({json.dumps(c, sort_keys=True) for c in counts.values()}) > 1:
                raise SystemExit(f"the engines' concept row counts differ at {target}: {counts}")
    print_table(
        f"Concept ETL, DuckDB vs Spark local[2] ({os.cpu_count()} cores; same rows out, checked)",
        [
            "target rows",
            "chartevents rows",
            "engine",
            "wall s",
            "chartevents rows/s",
            "CPU s per 1M rows",
            "peak RSS GB",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
