"""Policies for the review app: registered models from MLflow, or saved policy folders.

Each is loaded once per server process (`st.cache_resource`); its recommendations for a dataset
are cached as data (`st.cache_data`) keyed by the dataset and the policy's URI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import streamlit as st

from dosewise import models
from dosewise.data_schemas import BadInputError, DosewiseError, RunManifest
from dosewise.data_schemas import columns as c

from .datasets import Dataset, DatasetRef, dataset_columns, folders_with, sample_rows

POLICY_FILE = "policy.json"


@dataclass(frozen=True)
class PolicyRef:
    """A policy the sidebar can offer: where it lives and how reviews name it."""

    name: str
    version: str
    uri: str
    source: Literal["registry", "folder"]
    run_id: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How the picker shows it, e.g. `sepsis-dosing v3 (champion)`."""
        tag = f" ({', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.name} v{self.version}{tag}" if self.source == "registry" else f"{self.name} (folder)"


def _registered(tracking_uri: str | None) -> list[PolicyRef]:
    """Every version of every registered model, newest first."""
    refs = []
    for entry in models.list_registered_policies(tracking_uri):
        refs.append(PolicyRef(
            name=entry.name, version=str(entry.version), uri=f"models:/{entry.name}/{entry.version}",
            source="registry", run_id=entry.run_id, aliases=tuple(sorted(entry.aliases)),
        ))
    return sorted(refs, key=lambda r: (r.name, -int(r.version) if r.version.isdigit() else 0))


def _folder_version(folder: Path) -> str:
    """A folder policy's version for reviews: `local-` plus the start of its weights' SHA-256."""
    try:
        outputs = RunManifest.read(folder).outputs
    except DosewiseError:
        return "local"
    digest = outputs.get("model.pt") or outputs.get(POLICY_FILE)
    return f"local-{digest[:12]}" if digest else "local"


def _policy_folders(root: Path) -> list[PolicyRef]:
    """Saved policy folders (`policy.json`) a few levels under the data root (not MLflow's own copies)."""
    return [PolicyRef(name=folder.relative_to(root).as_posix() or folder.name,
                      version=_folder_version(folder), uri=str(folder), source="folder")
            for folder in folders_with(root, POLICY_FILE)]


@st.cache_data(ttl=30, show_spinner=False)
def find_policies(tracking_uri: str | None, root: str) -> tuple[list[PolicyRef], str | None]:
    """Registered policies plus local policy folders; the second item explains a registry failure."""
    registered: list[PolicyRef] = []
    problem = None
    if tracking_uri is None:
        problem = (f"no MLflow registry configured: no mlflow.db in {root}; set MLFLOW_TRACKING_URI "
                   "or pass --tracking-uri to `dosewise review`.")
    else:
        try:
            registered = _registered(tracking_uri)
        except DosewiseError as exc:
            problem = f"{exc.message} {exc.hint}".strip()
    folders = _policy_folders(Path(root)) if Path(root).is_dir() else []
    return registered + folders, problem


@st.cache_resource(max_entries=4, show_spinner="Loading policy…")
def load_policy(ref: PolicyRef, tracking_uri: str | None) -> Any:
    """The policy object (the `dosewise.models.Policy` protocol) behind `ref`."""
    if ref.source == "registry":
        return models.load_registered_policy(ref.uri, tracking_uri=tracking_uri)
    return models.load_policy(Path(ref.uri))


@st.cache_data(ttl=60, show_spinner="Checking which policies fit which datasets…")
def policy_features(ref: PolicyRef, tracking_uri: str | None) -> tuple[str, ...] | None:
    """The state columns `ref` needs; None when it does not load (the pages say why when picked)."""
    try:
        return tuple(load_policy(ref, tracking_uri).feature_names)
    except DosewiseError:
        return None


def fitting_policies(dataset: DatasetRef, policies: list[PolicyRef], tracking_uri: str | None
                     ) -> list[PolicyRef]:
    """The policies whose state columns `dataset` has, in the given order."""
    columns = set(dataset_columns(dataset.path))
    out = []
    for ref in policies:
        needed = policy_features(ref, tracking_uri)
        if needed is not None and columns.issuperset(needed):
            out.append(ref)
    return out


def check_features(policy: Any, dataset: Dataset) -> None:
    """Refuse a policy trained on state features this dataset does not have."""
    missing = [name for name in policy.feature_names if name not in dataset.trajectories.columns]
    if missing:
        raise BadInputError(
            f"The policy needs {len(missing)} state column(s) this dataset lacks "
            f"(e.g. {', '.join(missing[:3])}).",
            "Pick the dataset the policy was trained on, or a policy trained on this dataset's features.",
        )


@st.cache_data(max_entries=8, show_spinner="Computing the policy's actions…")
def dataset_recommendations(
    dataset_path: str, policy_uri: str, _dataset: Dataset, _policy: Any
) -> pd.DataFrame:
    """Clinician and policy actions over (a seeded sample of) the dataset, for the heatmap."""
    check_features(_policy, _dataset)
    rows = sample_rows(_dataset.trajectories)
    recommended = np.asarray(_policy.recommend(rows[list(_policy.feature_names)]), dtype=np.int64)
    return pd.DataFrame({"clinician": rows[c.ACTION].to_numpy(), "policy": recommended})


def stay_recommendations(policy: Any, stay: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Per bin of one stay: recommended action (and doses, in units, if the policy has them); Q values."""
    states = stay[list(policy.feature_names)]
    q_values = np.asarray(policy.q_values(states), dtype=float)
    out = pd.DataFrame({c.STEP: stay[c.STEP].to_numpy(),
                        "recommended": np.asarray(policy.recommend(states), dtype=np.int64)})
    if policy.dose_columns:
        doses = policy.recommend_doses(states).reset_index(drop=True)
        for name in policy.dose_columns:
            out[f"recommended_{name}"] = doses[name].to_numpy(dtype=float)
    return out, q_values
