"""The ETL on DuckDB vs Spark local[2], on synthetic MIMIC-IV at 10^6 and 10^7 chartevents rows.

`--pipeline chemo` runs the whole `etl chemo` on synthetic OMOP CDM (`write_synthetic_oncology`,
csv.gz; `--sizes` are then patients, default 10,000): the OMOP checks and SQL, then the per-patient
stages as grouped pandas UDFs on Spark; rows per 1 M are OMOP table rows read.
`--pipeline sepsis` (default) runs the whole `etl sepsis` (`run_sepsis_pipeline`: concepts, cohort,
stage SQL, the grid and imputation as grouped pandas UDFs on Spark, outputs); `--pipeline concepts`
runs `write_concept_tables` alone (every concept SQL file: chart/lab measurements, vitals, GCS,
ventilation, urine output, doses, SOFA, Sepsis-3). The Spark run transpiles the same SQL files with
sqlglot. Both engines read the same raw `.csv.gz` files, each in a fresh subprocess, and must give
the same row counts (concepts: per concept; sepsis: per stage, in, out and quarantined, and the
same number of trajectory rows). Reported per engine and size:
wall seconds, CPU seconds per 1 M chartevents rows (user + sys of the Python process and, for Spark,
of its JVM), and peak RSS (Python process + JVM, each its own high-water mark). The synthetic data
is made by `bench/etl_sepsis.py`'s generator child (same seed, same rows per stay).

    .venv/bin/python bench/etl_engines.py                          # 1e6, 1e7 rows, whole etl sepsis
    .venv/bin/python bench/etl_engines.py --sizes 1000000 --workdir /tmp/etl-bench --reuse
    .venv/bin/python bench/etl_engines.py --pipeline concepts --sizes 1000000
    .venv/bin/python bench/etl_engines.py --pipeline chemo --sizes 10000 --workdir /tmp/etl-bench --reuse

Spark runs with the session defaults of `spark_engine.session_defaults` (shuffle partitions = the
local cores, AQE coalescing); `--spark-conf k=v,...` overrides them.
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

# Spark's JVM is a child of the Python process: its CPU time (with that of the Python workers it
# started and reaped) and VmHWM are read from /proc before the interpreter exits (the JVM lives
# until then). The workers' memory is not in the peak RSS.
ENGINE_RUN = (
    PEAK
    + """
import json, os, resource, sys, time
from dosewise.pipelines import run_sepsis_pipeline
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
            # utime + stime, and cutime + cstime: the Python worker daemon and its pandas UDF
            # workers, which the JVM starts and reaps when the session stops
            found.append((sum(int(x) for x in stat[11:15]) / ticks, (hwm[0] if hwm else 0) / 2**20))
    return found
start = time.perf_counter()
conf = dict(kv.split("=", 1) for kv in sys.argv[5].split(",") if kv)
config = SepsisPipelineConfig.model_validate({"engine": sys.argv[3], "spark": {"conf": conf},
                                              "output": {"pseudonymize_ids": False}})
if sys.argv[4] == "chemo":
    from dosewise.pipelines import ChemoPipelineConfig, run_chemo_pipeline
    chemo = ChemoPipelineConfig.model_validate({"engine": sys.argv[3], "spark": {"conf": conf},
                                                "input": {"format": "omop"},
                                                "output": {"pseudonymize_ids": False}})
    m = run_chemo_pipeline(chemo, sys.argv[1], sys.argv[2], show_progress=False)
    rows = {s.name: [s.rows_in, s.rows_out, s.rows_quarantined] for s in m.stages}
    stages = {s.name: round(s.seconds, 1) for s in m.stages}
elif sys.argv[4] == "concepts":
    m = write_concept_tables(sys.argv[1], sys.argv[2], config=config)
    rows = m.extra["rows"]
    stages = {}
else:
    m = run_sepsis_pipeline(config, sys.argv[1], sys.argv[2], show_progress=False)
    rows = {s.name: [s.rows_in, s.rows_out, s.rows_quarantined] for s in m.stages}
    stages = {s.name: round(s.seconds, 1) for s in m.stages}
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
children = jvm_children()
cpu = usage.ru_utime + usage.ru_stime + sum(c for c, _ in children)
rss = peak_gb() + sum(r for _, r in children)
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rss_gb": rss, "rows": rows,
                  "stage_seconds": stages, "load_1min": os.getloadavg()[0]}))
"""
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default=None,
        help="target chartevents rows (chemo: patients), comma-separated; default 1e6,1e7 (chemo: 10000)",
    )
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--pipeline", choices=("sepsis", "concepts", "chemo"), default="sepsis")
    parser.add_argument("--spark-conf", default="", help="Spark settings k=v,k=v over the defaults")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="keep data here (default: temp)")
    parser.add_argument("--reuse", action="store_true", help="reuse data already generated in --workdir")
    args = parser.parse_args()
    os.environ.setdefault("COLUMNS", "200")
    if args.pipeline == "chemo":
        chemo_table(args)
        return
    args.sizes = args.sizes or "1000000,10000000"
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
                load = os.getloadavg()[0]
                result = run_child(ENGINE_RUN, str(raw), str(workdir / f"{engine}_{target}"), engine,
                                   args.pipeline, args.spark_conf)
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
                        f"{load:.1f} / {result['load_1min']:.1f}",
                    ]
                )
                print(json.dumps({"target": target, "engine": engine, **result}), file=sys.stderr)
            if len({json.dumps(c, sort_keys=True) for c in counts.values()}) > 1:
                raise SystemExit(f"the engines' row counts differ at {target}: {counts}")
    what = "etl sepsis" if args.pipeline == "sepsis" else "Concept ETL"
    print_table(
        f"{what}, DuckDB vs Spark local[2] ({os.cpu_count()} cores; same rows out, checked)",
        [
            "target rows",
            "chartevents rows",
            "engine",
            "wall s",
            "chartevents rows/s",
            "CPU s per 1M rows",
            "peak RSS GB",
            "load 1 min (start / end)",
        ],
        rows,
    )


def _omop_source(workdir: Path, patients: int, seed: int, reuse: bool) -> Path:
    """Synthetic OMOP CDM (csv.gz) of `patients` simulated patients, made once per size."""
    from dosewise.pipelines import write_synthetic_oncology

    raw = workdir / f"omop_{patients}"
    if not (reuse and (raw / "person.csv.gz").is_file()):
        write_synthetic_oncology(raw, patients, seed=seed, fmt="omop", file_format="csv.gz")
    return raw


def chemo_table(args: argparse.Namespace) -> None:
    """`--pipeline chemo`: etl chemo on both engines per size (patients); same stage counts, checked."""
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="dosewise-engines-") as tmp:
        workdir = args.workdir or Path(tmp)
        for patients in (int(float(s)) for s in (args.sizes or "10000").split(",")):
            raw = _omop_source(workdir, patients, args.seed, args.reuse)
            counts = {}
            for engine in args.engines.split(","):
                load = os.getloadavg()[0]
                result = run_child(ENGINE_RUN, str(raw), str(workdir / f"chemo_{engine}_{patients}"), engine,
                                   "chemo", args.spark_conf)
                counts[engine] = result["rows"]
                read = result["rows"]["sources"][0]
                rows.append([f"{patients:,}", f"{read:,}", f"{result['rows']['trajectories'][1]:,}", engine,
                             f"{result['seconds']:.1f}", f"{result['cpu_seconds']:.1f}",
                             f"{result['rss_gb']:.2f}", f"{load:.1f} / {result['load_1min']:.1f}"])
                print(json.dumps({"patients": patients, "engine": engine, **result}), file=sys.stderr)
            if len({json.dumps(c, sort_keys=True) for c in counts.values()}) > 1:
                raise SystemExit(f"the engines' stage counts differ at {patients} patients: {counts}")
    print_table(f"etl chemo (OMOP csv.gz), DuckDB vs Spark local[2] ({os.cpu_count()} cores; same "
                "stage counts, checked)",
                ["patients", "OMOP rows", "cycles", "engine", "wall s", "CPU s", "peak RSS GB",
                 "load 1 min (start / end)"], rows)


if __name__ == "__main__":
    main()
