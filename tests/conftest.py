"""Shared fixtures: seeds, the real `../shared` data, a local MLflow store, CPU-only runs."""

from __future__ import annotations

import os
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
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
