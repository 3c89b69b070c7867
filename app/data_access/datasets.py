"""The only page-side module that reads data: datasets, policies, OPE reports and reviews.

It calls the public APIs of `dosewise.data_schemas`, `dosewise.models` (policies, the MLflow
registry, behaviour models) and nothing deeper; pages call it and the chart builders. Loaders are
cached: `st.cache_data` for frames and reports, `st.cache_resource` for policies and the database.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dosewise.data_schemas import (
    MANIFEST_NAME,
    DosewiseError,
    RunManifest,
    TrajectoryDatasetInfo,
    read_trajectories,
)
from dosewise.data_schemas import columns as c

from ..review_store import ReviewStore

MAX_SCAN_DEPTH = 4
SKIP_FOLDERS = frozenset({"mlartifacts", "mlruns", "d3rlpy_logs", "__pycache__"})
HEATMAP_MAX_ROWS = 50_000


@dataclass(frozen=True)
class DatasetRef:
    """A trajectories folder found under the data root."""

    name: str
    path: str


@dataclass
class Dataset:
    """One loaded trajectories folder with its provenance and cohort tables."""

    ref: DatasetRef
    trajectories: pd.DataFrame
    manifest: RunManifest
    info: TrajectoryDatasetInfo
    sha256: str
    cohort: pd.DataFrame | None
    funnel: pd.DataFrame
    quarantine: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def grid(self) -> tuple[int, int] | None:
        """(fluid bins, vasopressor bins) when the action is a 2-D grid."""
        grid = self.info.action_grid
        return (int(grid[0]), int(grid[1])) if len(grid) == 2 else None


@st.cache_resource(max_entries=4)
def review_store(url: str) -> ReviewStore:
    """One pooled review store per database URL."""
    return ReviewStore(url)


def _is_trajectories_folder(folder: Path) -> bool:
    return (folder / MANIFEST_NAME).is_file() and (folder / "trajectories.parquet").is_file()


def folders_with(root: Path, filename: str) -> list[Path]:
    """Folders up to `MAX_SCAN_DEPTH` levels under `root` that hold `filename` (hidden and MLflow
    artifact folders skipped, so the registry's own copies are not listed twice)."""
    found = []
    for folder, subfolders, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and d not in SKIP_FOLDERS
                               and depth < MAX_SCAN_DEPTH)
        if filename in files:
            found.append(Path(folder))
    return found


@st.cache_data(ttl=30, show_spinner=False)
def find_datasets(root: str) -> list[DatasetRef]:
    """Finished trajectories folders (manifest written) up to a few levels under `root`."""
    base = Path(root)
    if not base.is_dir():
        return []
    found: list[DatasetRef] = []
    frontier = [base]
    for _ in range(MAX_SCAN_DEPTH + 1):
        nxt: list[Path] = []
        for folder in frontier:
            if _is_trajectories_folder(folder):
                name = folder.relative_to(base).as_posix() if folder != base else folder.name
                found.append(DatasetRef(name=name, path=str(folder)))
                continue
            try:
                nxt.extend(p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
        frontier = nxt
    return sorted(found, key=lambda ref: ref.name)


@st.cache_data(ttl=60, show_spinner=False)
def dataset_columns(path: str) -> tuple[str, ...]:
    """The columns of a dataset's `trajectories.parquet`, from its footer (no rows are read)."""
    import pyarrow.parquet as pq

    try:
        return tuple(pq.read_schema(Path(path) / "trajectories.parquet").names)
    except (OSError, ValueError):
        return ()


def _quarantine_counts(folder: Path, manifest: RunManifest) -> pd.DataFrame:
    """Rows quarantined per (stage, rule): from the manifest, else from quarantine/*.parquet."""
    rows = [
        {"stage": stage.name, "rule": rule, "rows": int(n)}
        for stage in manifest.stages
        for rule, n in stage.quarantined_by_rule.items()
        if n
    ]
    if not rows and (folder / "quarantine").is_dir():
        for path in sorted((folder / "quarantine").glob("*.parquet")):
            table = pd.read_parquet(path, columns=["stage", "rule"])
            for (stage, rule), n in table.groupby(["stage", "rule"]).size().items():
                rows.append({"stage": str(stage), "rule": str(rule), "rows": int(n)})
    return pd.DataFrame(rows, columns=["stage", "rule", "rows"])


@st.cache_data(max_entries=4, show_spinner="Loading dataset…")
def load_dataset(path: str) -> Dataset:
    """Read and validate a trajectories folder, its cohort, funnel and quarantine counts."""
    folder = Path(path)
    frame, manifest = read_trajectories(folder)
    info = manifest.dataset
    if info is None:  # read_trajectories already refuses such folders
        raise DosewiseError(f"{folder} has no dataset contract in its manifest.")
    cohort = pd.read_parquet(folder / "cohort.parquet") if (folder / "cohort.parquet").is_file() else None
    funnel = pd.DataFrame([step.model_dump() for step in manifest.funnel], columns=["rule", "description",
                                                                                     "remaining"])
    sha = manifest.outputs.get("trajectories.parquet") or manifest.config_sha256
    return Dataset(
        ref=DatasetRef(name=folder.name, path=str(folder)), trajectories=frame, manifest=manifest,
        info=info, sha256=sha, cohort=cohort, funnel=funnel,
        quarantine=_quarantine_counts(folder, manifest),
    )


def stay(dataset: Dataset, episode_id: str) -> pd.DataFrame | None:
    """The bins of one stay in step order, or None when the id is not in the dataset."""
    rows = dataset.trajectories[dataset.trajectories[c.EPISODE_ID] == episode_id.strip()]
    return rows.sort_values(c.STEP).reset_index(drop=True) if len(rows) else None


def episode_ids(dataset: Dataset) -> list[str]:
    """Every stay id of the dataset, sorted."""
    return sorted(dataset.trajectories[c.EPISODE_ID].unique().tolist())


def cohort_columns(cohort: pd.DataFrame | None) -> tuple[str | None, str | None]:
    """The age and the gender/sex column of a cohort table, where it has them."""
    if cohort is None:
        return None, None
    age = next((col for col in cohort.columns if col.lower().startswith("age")
                and pd.api.types.is_numeric_dtype(cohort[col])), None)
    group = next((col for col in cohort.columns if col.lower() in {"gender", "sex"}), None)
    return age, group


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file (used for small report files)."""
    payload: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return payload


def sample_rows(frame: pd.DataFrame, limit: int = HEATMAP_MAX_ROWS) -> pd.DataFrame:
    """At most `limit` rows, a seeded sample, so dataset-wide charts stay fast."""
    return frame if len(frame) <= limit else frame.sample(n=limit, random_state=0)


def action_bins(actions: np.ndarray, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Split a flat action index into (fluid bin, vasopressor bin): action = f * grid[1] + v."""
    actions = np.asarray(actions, dtype=np.int64)
    return actions // grid[1], actions % grid[1]
