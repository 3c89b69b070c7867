"""A writer killed mid-write (SIGKILL) leaves no file that looks whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from dosewise.data_schemas import write_table_atomic

WRITER = """
import sys, time
from pathlib import Path
from dosewise.data_schemas import write_bytes_atomic

def slow(handle):
    handle.write(b"partial" * 1000)
    handle.flush()
    Path(sys.argv[2]).write_text("started")
    time.sleep(60)
    handle.write(b"end")

write_bytes_atomic(Path(sys.argv[1]), slow)
"""


def test_sigkill_mid_write_leaves_no_final_file(tmp_path: Path) -> None:
    target = tmp_path / "trajectories.parquet"
    flag = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(flag)])
    try:
        deadline = time.time() + 30
        while not flag.exists():
            assert time.time() < deadline, "writer never started"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "started"]
    assert all(name.startswith(".") and name.endswith(".tmp") for name in leftovers)


def test_atomic_parquet_is_byte_identical_for_equal_frames(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 0.25, 0.125]})
    first = write_table_atomic(frame, tmp_path / "a.parquet").read_bytes()
    second = write_table_atomic(frame.copy(), tmp_path / "b.parquet").read_bytes()
    assert first == second
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
