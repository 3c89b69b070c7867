"""Shared fixtures: seeds, the real `../shared` data, a local MLflow store, CPU-only runs; and how the
suite splits over pytest-xdist workers (`bash .ci/test` runs `-n 2 --dist loadfile`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

REPO_ROOT = Path(__file__).resolve().parent.parent

# Tests never reach a real tracking server or a GPU by accident.
os.environ.pop("MLFLOW_TRACKING_URI", None)

# Property tests draw the same examples on every run (a CI result does not depend on luck);
# DOSEWISE_HYPOTHESIS_PROFILE=explore draws fresh ones, as when hunting for new failing cases.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", max_examples=200)
settings.load_profile(os.environ.get("DOSEWISE_HYPOTHESIS_PROFILE", "repeatable"))

# Under pytest-xdist each worker gets its share of the cores for torch, OpenMP and BLAS: two workers
# with two threads each on a 2-core machine spin idle OpenMP threads against each other. Set before
# torch is imported (torch reads OMP_NUM_THREADS once); subprocesses inherit it. An explicit
# OMP_NUM_THREADS wins. A single run (`-n 0`, `-p no:xdist`) keeps torch's default.
XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if XDIST_WORKERS > 1:
    _threads = max(1, len(os.sched_getaffinity(0)) // XDIST_WORKERS)
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, str(_threads))
    if "torch" in sys.modules:  # pragma: no cover - imported early by some plugin
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# Under xdist (`--dist loadfile`) a test file is one unit of work: its module-scoped fixtures are
# built once and a file's tests never run on two workers at once. (`--dist loadgroup` would allow
# groups across files, but xdist 3.8.0 tags the group onto `item._nodeid`, which pytest 9 no longer
# reads, so its groups are silently ignored.) Files that start a service come first, then files with
# `slow` tests, so that the long ones start at once instead of ending the run on one worker while the
# other idles; `.ci/test` passes `--no-loadscope-reorder` so that xdist keeps this order.
SERVICE_MARKERS = ("spark",)  # a local[2] Spark session (a JVM)
SERVICE_FIXTURES = ("local_ray",)  # a local Ray head with its workers


def _order_files_for_xdist(items: list[pytest.Item]) -> None:
    """Stable-sort `items` by file: service files, then files with `slow` tests, then the rest."""
    def file_of(item: pytest.Item) -> str:
        return item.nodeid.split("::", 1)[0]

    first_seen: dict[str, int] = {}
    rank: dict[str, int] = {}
    for index, item in enumerate(items):
        name = file_of(item)
        first_seen.setdefault(name, index)
        service = any(m in item.keywords for m in SERVICE_MARKERS) or any(
            f in getattr(item, "fixturenames", ()) for f in SERVICE_FIXTURES)
        rank[name] = min(rank.get(name, 2), 0 if service else 1 if "slow" in item.keywords else 2)
    items.sort(key=lambda item: (rank[file_of(item)], first_seen[file_of(item)]))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the test files on an xdist worker; skip `gpu` tests without CUDA."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _order_files_for_xdist(items)
    _skip_gpu_without_cuda(items)


def _skip_gpu_without_cuda(items: list[pytest.Item]) -> None:
    """Skip `gpu` tests when CUDA is absent (checked only if such tests were collected)."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs CUDA; run on the lent GPU machine")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture
def seed() -> int:
    """A fixed seed (scikit-learn's global_random_seed idea; override with DOSEWISE_TEST_SEED)."""
    return int(os.environ.get("DOSEWISE_TEST_SEED", "0"))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real open clinical data in ../shared/data; skips the test when it is absent."""
    path = REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"../shared/data not found beside the repository ({path})")
    return path


@pytest.fixture(scope="session")
def trials_dir(shared_data_dir: Path) -> Path:
    """The real trial records (R survival/nlme datasets: colon, myeloid, ...)."""
    path = shared_data_dir / "r-clinical-datasets"
    if not (path / "survival_colon.csv.gz").is_file():
        pytest.skip("r-clinical-datasets not present in ../shared/data")
    return path


@pytest.fixture(scope="session")
def mimic3_demo_dir(shared_data_dir: Path) -> Path:
    """The real MIMIC-III Clinical Database Demo v1.4."""
    path = shared_data_dir / "mimic-iii-demo-1.4"
    if not (path / "ICUSTAYS.csv.gz").is_file():
        pytest.skip("MIMIC-III demo not present in ../shared/data")
    return path


@pytest.fixture
def mlflow_uri(tmp_path: Path) -> str:
    """A fresh sqlite MLflow tracking store for one test."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
