"""The Spark engine: a `SparkSession` from `SparkSettings`, checked before it is started.

pyspark and a Java 17+ runtime are optional; asking for `--engine spark` without them exits 2 and
says what to install. A master (`spark://`, `k8s://`) or Spark Connect remote (`sc://`) that does not
accept a TCP connection within `connect_timeout_s` is refused in seconds, instead of Spark's own
retries, which wait for minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import warnings
from typing import Any
from urllib.parse import urlparse

from pydantic import Field

from dosewise.data_schemas import BadInputError, StrictConfig

INSTALL_JAVA = (
    "Install a Java 17+ runtime (Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME."
)
INSTALL_PYSPARK = "Install pyspark: pip install 'dosewise[spark]' (pyspark 4.3.0)."


class SparkSettings(StrictConfig):
    """Where and how the Spark engine runs (ignored by the DuckDB engine)."""

    master: str = Field(
        default="local[2]",
        description="Spark master URL: local[N], spark://HOST:PORT, k8s://https://HOST:PORT or yarn.",
    )
    remote: str | None = Field(
        default=None,
        description="Spark Connect / Databricks Connect URL (sc://HOST:PORT); replaces `master` when set.",
    )
    conf: dict[str, str] = Field(
        default_factory=dict,
        description="Extra Spark settings (spark.executor.memory, spark.sql.shuffle.partitions, ...); they "
        "override the local defaults of `session_defaults` (shuffle partitions = local cores, AQE "
        "coalescing to 16 MB partitions, 2 GB driver).",
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, le=300, description="Seconds to wait for the master or remote to answer."
    )


def _java_major(java: str) -> int | None:
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def check_spark_available() -> None:
    """Exit 2 unless pyspark imports and a Java 17+ runtime is on PATH or in JAVA_HOME."""
    try:
        with warnings.catch_warnings():  # pyspark.pandas (unused) warns about pandas 3 on import
            warnings.simplefilter("ignore", FutureWarning)
            import pyspark  # noqa: F401
    except ImportError as exc:
        raise BadInputError(
            "`--engine spark` needs pyspark, which is not installed.", INSTALL_PYSPARK
        ) from exc
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise BadInputError(
            "`--engine spark` needs Java, and none was found (PATH or JAVA_HOME).", INSTALL_JAVA
        )
    major = _java_major(java)
    if major is None or major < 17:
        raise BadInputError(
            f"`--engine spark` needs Java 17 or newer. Got {major or 'an unreadable version'} ({java}).",
            INSTALL_JAVA,
        )


def _endpoints(url: str) -> list[tuple[str, int]]:
    """(host, port) pairs a master/remote URL must answer on; none for local[N] and yarn."""
    if url.startswith("local") or url == "yarn":
        return []
    if url.startswith("k8s://"):
        parsed = urlparse(url[len("k8s://") :])
        return [(parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80))]
    if url.startswith(("spark://", "sc://")):
        scheme, rest = url.split("://", 1)
        hosts = rest.split("/", 1)[0].split(";", 1)[0]
        default = 7077 if scheme == "spark" else 15002
        pairs = []
        for part in hosts.split(","):
            host, _, port = part.partition(":")
            pairs.append((host, int(port) if port.isdigit() else default))
        return pairs
    raise BadInputError(
        f"The Spark master must be local[N], spark://, k8s://, yarn or sc://. Got {url!r}.",
        "Set spark.master (or spark.remote) in the config.",
    )


def check_reachable(url: str, timeout_s: float) -> None:
    """Exit 2 when no endpoint of `url` accepts a TCP connection within `timeout_s` seconds."""
    pairs = _endpoints(url)
    errors = []
    for host, port in pairs:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return
        except OSError as exc:
            errors.append(f"{host}:{port} ({exc.__class__.__name__}: {exc})")
    if pairs:
        raise BadInputError(
            f"The Spark master {url} did not answer within {timeout_s:g} s: {'; '.join(errors)}.",
            "Check the URL and that the master is running, or use spark.master = 'local[2]'.",
        )


def local_cores(master: str) -> int | None:
    """N of `local[N]` (all cores for `local[*]` and `local`); None for a cluster master."""
    if not master.startswith("local"):
        return None
    match = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\s*\d+)?\])?", master.strip())
    if match is None or match.group(1) in (None, "*"):
        return os.cpu_count() or 1
    return max(1, int(match.group(1)))


def session_defaults(settings: SparkSettings) -> dict[str, str]:
    """Settings every session starts with; `settings.conf` overrides any of them.

    Spark's own defaults suit clusters and large data: 200 shuffle partitions make every join and
    aggregate of a small or local job schedule 200 tasks, most of them empty. On `local[N]` the
    shuffle partitions are N; adaptive execution (AQE) then coalesces small partitions towards 16 MB
    instead of keeping one per core (`parallelismFirst = false`). Arrow moves the small frames the ETL
    collects or registers (cohort, stays, stay keys) between pandas and Spark. Python workers use this
    interpreter on `local[N]` (on a cluster the executors need dosewise installed in theirs).
    """
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.parallelismFirst": "false",
        "spark.sql.adaptive.advisoryPartitionSizeInBytes": "16m",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    cores = None if settings.remote else local_cores(settings.master)
    if cores is not None:
        conf.update({
            "spark.sql.shuffle.partitions": str(cores),
            "spark.default.parallelism": str(cores),
            "spark.driver.memory": "2g",
        })
    return conf


def start_session(settings: SparkSettings) -> Any:
    """A `SparkSession` on `settings` (timestamps without time zone, UTC, no UI, quiet logs)."""
    check_spark_available()
    url = settings.remote or settings.master
    check_reachable(url, settings.connect_timeout_s)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("dosewise-etl")
    if settings.remote:
        try:
            builder = builder.remote(settings.remote)
        except ImportError as exc:
            raise BadInputError(
                f"Spark Connect ({settings.remote}) needs its client libraries: {exc}.",
                "pip install 'pyspark[connect]==4.3.0'.",
            ) from exc
    else:
        builder = builder.master(settings.master).config("spark.ui.enabled", "false")
    conf = {**session_defaults(settings), **settings.conf}
    if settings.remote:  # a Connect server owns its static settings (driver memory, Python)
        conf = {k: v for k, v in conf.items() if k.startswith("spark.sql.")}
    if not settings.remote and local_cores(settings.master) is not None:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # pyspark reads it, not a setting
    for key, value in conf.items():
        builder = builder.config(key, value)
    marked = "SPARK_CONNECT_MODE_ENABLED" in os.environ
    session = builder.getOrCreate()
    if settings.remote and not marked:
        _CONNECT_MARKED.add(id(session))
    if not settings.remote:
        session.sparkContext.setLogLevel("ERROR")
    return session


_CONNECT_MARKED: set[int] = set()  # Connect sessions whose start marked this process Connect-only


def stop_session(session: Any) -> None:
    """Stop a session of `start_session`; after a Connect one, classic sessions can start again.

    A Spark Connect session marks the whole process Connect-only (pyspark sets
    `SPARK_CONNECT_MODE_ENABLED`, and every later `SparkSession.builder` then asks for a remote URL);
    the mark is lifted when the session that set it stops, so that one process (a `dosewise run`, a
    test run) can run a remote ETL and then a `local[N]` one."""
    session.stop()
    if id(session) in _CONNECT_MARKED:
        _CONNECT_MARKED.discard(id(session))
        os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)


__all__ = [
    "SparkSettings", "check_reachable", "check_spark_available", "local_cores", "session_defaults",
    "start_session", "stop_session",
]
