"""Data roots for the review app tests: empty, dataset only, and the full chain (session-scoped)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.review_root import ReviewRoot, build_dataset, build_etl_root, build_review_root


@pytest.fixture(scope="session")
def review_root(tmp_path_factory: pytest.TempPathFactory) -> ReviewRoot:
    """Dataset, trained policy, OPE report and registry, made once by the real producers."""
    return build_review_root(tmp_path_factory.mktemp("review_root"))


@pytest.fixture(scope="session")
def dataset_only_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with one dataset and no registry."""
    root = tmp_path_factory.mktemp("dataset_only")
    build_dataset(root, episodes=20)
    return root


@pytest.fixture(scope="session")
def etl_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sepsis ETL dataset (funnel, quarantine, cohort, doses in units) and a policy folder."""
    root = tmp_path_factory.mktemp("etl_root")
    build_etl_root(root)
    return root


@pytest.fixture(scope="session")
def chemo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sepsis and chemotherapy datasets side by side, with a continuous chemo policy folder."""
    from tests.app.review_root import build_chemo_root

    root = tmp_path_factory.mktemp("chemo_root")
    build_chemo_root(root)
    return root


@pytest.fixture(scope="session")
def mixed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """As after `dosewise demo`: an ICU-Sepsis dataset first in the list, and a sepsis ETL dataset
    with the only policy, which needs state columns the ICU-Sepsis dataset lacks."""
    root = tmp_path_factory.mktemp("mixed_root")
    build_dataset(root, episodes=20)
    build_etl_root(root)
    return root
