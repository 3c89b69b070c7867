"""Review database under load: 20 reviewers submitting 50 reviews each at once (issue 8).

Each reviewer is its own process appending through `ReviewStore` against the same database while
`dosewise review` serves the app on the same data root; a poller asks the app's health endpoint and
its cohort page every 50 ms throughout. Reported per backend: rows stored vs expected (lost),
wall time, reviews/s, the slowest single append, and the app's answer latency during the load.

Compared in the same run: SQLite in WAL mode (the default) against SQLite's rollback journal
(`delete`), and PostgreSQL when `--postgres URL` is given.

    .venv/bin/python bench/review_load.py                        # 20 x 50, sqlite wal vs delete
    .venv/bin/python bench/review_load.py --writers 20 --reviews 50 --postgres postgresql+psycopg://u@h/db
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from dosewise.app.review_store import ReviewStore
from dosewise.data_schemas import ClinicianReviewSchema
from dosewise.data_schemas.console import print_table


def _review(writer: int, index: int) -> ClinicianReviewSchema:
    return ClinicianReviewSchema(
        reviewer=f"bench-{writer:02d}", episode_id=f"sim-{index % 40:02d}", step=index, action_given=6,
        action_recommended=12, verdict=("agree", "partly", "disagree")[index % 3],
        reviewer_fluid_ml_4h=250.0, reviewer_norepi_eq_mcg_kg_min=0.05, comment=f"load test {writer}/{index}",
        policy_name="sepsis-dosing", policy_version="1", dataset_name="bench", dataset_sha256="0" * 64,
    )


def _writer(url: str, journal: str, writer: int, count: int, barrier: object, out: multiprocessing.Queue
            ) -> None:
    store = ReviewStore(url, sqlite_journal_mode=journal)
    reviews = [_review(writer, i) for i in range(count)]
    barrier.wait()  # type: ignore[attr-defined]  # every writer begins at the same moment
    began_all = time.time()
    slowest, failures = 0.0, 0
    for review in reviews:
        began = time.perf_counter()
        try:
            store.append(review)
        except Exception:  # counted: a failed append is a lost review
            failures += 1
        slowest = max(slowest, time.perf_counter() - began)
    out.put((began_all, time.time(), slowest, failures))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _poll(url: str, stop: threading.Event, latencies: list[float], errors: list[str]) -> None:
    while not stop.is_set():
        for path in ("/_stcore/health", "/"):
            began = time.perf_counter()
            try:
                with urllib.request.urlopen(url + path, timeout=10) as answer:
                    answer.read()
                latencies.append(time.perf_counter() - began)
            except OSError as exc:
                errors.append(str(exc))
        stop.wait(0.05)


def _start_app(root: Path, db_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "DOSEWISE_REVIEW_DB_URL": db_url}
    exe = str(Path(sys.executable).with_name("dosewise"))
    proc = subprocess.Popen([exe, "--quiet", "review", "--port", str(port), "--data-root", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as answer:
                if answer.read() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("dosewise review did not start")


def run_load(url: str, journal: str, writers: int, reviews: int, root: Path) -> list[object]:
    """One backend under load; returns a table row."""
    store = ReviewStore(url, sqlite_journal_mode=journal)
    before = store.count()
    app, app_url = _start_app(root, url)
    latencies: list[float] = []
    errors: list[str] = []
    stop = threading.Event()
    poller = threading.Thread(target=_poll, args=(app_url, stop, latencies, errors))
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue = context.Queue()
    barrier = context.Barrier(writers)
    procs = [context.Process(target=_writer, args=(url, journal, w, reviews, barrier, queue))
             for w in range(writers)]
    try:
        for p in procs:
            p.start()
        poller.start()
        results = [queue.get(timeout=600) for _ in procs]
        wall = max(r[1] for r in results) - min(r[0] for r in results)
        for p in procs:
            p.join(timeout=60)
    finally:
        stop.set()
        if poller.is_alive():
            poller.join()
        app.terminate()
        app.wait(timeout=30)
    stored = store.count() - before
    expected = writers * reviews
    lat = np.asarray(latencies) * 1000 if latencies else np.asarray([np.nan])
    name = url.split(":", 1)[0] + (f" ({journal})" if url.startswith("sqlite") else "")
    return [name, expected, stored, expected - stored, sum(r[3] for r in results), f"{wall:.2f}",
            f"{stored / wall:.0f}", f"{1000 * max(r[2] for r in results):.0f}", len(latencies),
            f"{np.median(lat):.0f}", f"{np.percentile(lat, 99):.0f}", f"{lat.max():.0f}", len(errors)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--reviews", type=int, default=50, help="Reviews per writer.")
    parser.add_argument("--postgres", default=None, help="A scratch PostgreSQL URL to compare with.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dosewise-review-load-"))
    try:
        rows = [run_load(f"sqlite:///{work / mode / 'reviews.db'}", mode, args.writers, args.reviews, work)
                for mode in ("wal", "delete")]
        if args.postgres:
            rows.append(run_load(args.postgres, "wal", args.writers, args.reviews, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(
        f"{args.writers} reviewers x {args.reviews} reviews, one process each, while the app serves",
        ["backend", "expected", "stored", "lost", "failed", "wall s", "reviews/s", "slowest append ms",
         "app answers", "app p50 ms", "app p99 ms", "app max ms", "app errors"],
        rows,
    )


if __name__ == "__main__":
    main()
