"""Wall time and CPU time of the shipped `dosewise sweep --config sweep_demo` (goal: <= 5 min on 2 cores).

Runs the real command in a subprocess (its own local Ray) and polls /proc twice a second for every
process below it (the driver, Ray's GCS, raylet and workers), keeping each one's last user+system
CPU seconds. On a machine shared with other jobs the wall time depends on the load, so the table
also shows an estimate for 2 idle cores: the driver's CPU (data, selection, the winner's test run
and registration happen there, one after another) plus half of everything else (the trials run two
at a time). The load average is printed beside it.

    .venv/bin/python bench/sweep_demo_time.py [--config sweep_demo] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dosewise.data_schemas.console import print_table

TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, user + system CPU seconds) of every readable process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after the command name, which may hold spaces
        found[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS)
    return found


def _descendants(root: int, table: dict[int, tuple[int, float]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        out.add(pid)
        todo.extend(children.get(pid, []))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="sweep_demo")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    dosewise = Path(sys.executable).parent / "dosewise"
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        command = [str(dosewise), "--quiet", "sweep", "--config", args.config,
                   "--set", f"out={str(Path(tmp) / 'sweep')!r}",
                   *[a for s in args.overrides for a in ("--set", s)]]
        started = time.perf_counter()
        child = subprocess.Popen(command)
        cpu: dict[int, float] = {}
        while child.poll() is None:
            table = _processes()
            for pid in _descendants(child.pid, table):
                if pid in table:
                    cpu[pid] = table[pid][1]
            time.sleep(0.5)
        wall = time.perf_counter() - started
    driver = cpu.get(child.pid, 0.0)
    rest = sum(cpu.values()) - driver
    estimate = driver + rest / 2
    rows = [("wall s (this machine)", f"{wall:.0f}"),
            ("CPU s, driver", f"{driver:.0f}"),
            ("CPU s, Ray (GCS, raylet, workers)", f"{rest:.0f}"),
            ("estimate on 2 idle cores: driver + Ray / 2 (s)", f"{estimate:.0f}"),
            ("load average before / after", f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"),
            ("exit code", str(child.returncode))]
    print_table(f"dosewise sweep --config {args.config} (goal: <= 300 s on 2 cores)", ["what", "value"], rows)


if __name__ == "__main__":
    main()
