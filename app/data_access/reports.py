"""OPE reports for the review app: `ope_report.json`, `support_flags.parquet`, behaviour calibration.

A report is found for the selected policy in its MLflow run (registered policies) or in the OPE
folders under the data root that evaluated the selected dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dosewise import models
from dosewise.data_schemas import DosewiseError, OpeReport
from dosewise.data_schemas import columns as c

from .datasets import Dataset, folders_with
from .policies import PolicyRef

REPORT_FILE = "ope_report.json"
RUN_OPE_FOLDER = "ope"
SUPPORT_FILE = "support_flags.parquet"
CALIBRATION_BINS = 10


@dataclass
class LoadedReport:
    """An OPE report and the folder its companion files (support flags, behaviour model) lie in."""

    report: OpeReport
    folder: Path
    origin: str


def _same_path(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _local_reports(root: Path) -> list[Path]:
    return [folder / REPORT_FILE for folder in folders_with(root, REPORT_FILE)]


def _from_run(ref: PolicyRef, tracking_uri: str | None) -> LoadedReport | None:
    """The OPE folder (`ope/`) logged with a registered policy's MLflow run, when there is one."""
    if ref.run_id is None or tracking_uri is None:
        return None
    try:
        folder = Path(models.fetch_run_artifact(ref.run_id, RUN_OPE_FOLDER, tracking_uri=tracking_uri))
    except DosewiseError:
        return None
    if not (folder / REPORT_FILE).is_file():
        return None
    report = OpeReport.model_validate_json((folder / REPORT_FILE).read_text(encoding="utf-8"))
    return LoadedReport(report=report, folder=folder, origin=f"MLflow run {ref.run_id}")


@st.cache_data(ttl=60, show_spinner="Looking for OPE reports…")
def find_report(
    root: str, dataset_path: str, ref: PolicyRef, tracking_uri: str | None, policy_name: str | None = None
) -> LoadedReport | None:
    """The OPE report of `ref` on this dataset: its own MLflow run first, then the newest local
    report of this dataset (preferring one of the same algorithm), then the run's report anyway."""
    from_run = _from_run(ref, tracking_uri)
    if from_run is not None and _same_path(from_run.report.trajectories, dataset_path):
        return from_run
    candidates = []
    for path in _local_reports(Path(root)) if Path(root).is_dir() else []:
        try:
            report = OpeReport.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if _same_path(report.trajectories, dataset_path):
            candidates.append((report.policy_name == policy_name, report.created_at, str(path)))
    if not candidates:
        return from_run
    best = Path(max(candidates)[2])
    report = OpeReport.model_validate_json(best.read_text(encoding="utf-8"))
    return LoadedReport(report=report, folder=best.parent, origin=str(best.parent))


def first_flagged_stay(flags: pd.DataFrame | None) -> str | None:
    """The first stay with an out-of-support recommendation (else the first evaluated stay)."""
    if flags is None or flags.empty:
        return None
    flagged = flags[flags["out_of_support"].astype(bool)]
    return str((flagged if len(flagged) else flags)[c.EPISODE_ID].iloc[0])


def support_flags(loaded: LoadedReport | None) -> pd.DataFrame | None:
    """Per (episode, step) of the evaluated split: is the recommendation out of the clinicians' support?"""
    if loaded is None:
        return None
    path = loaded.folder / Path(loaded.report.files.get("support", SUPPORT_FILE)).name
    if not path.is_file():
        return None
    flags = pd.read_parquet(path)
    return flags[[c.EPISODE_ID, c.STEP, "out_of_support"]]


def headline(frame: pd.DataFrame, estimator: str = "WIS") -> tuple[pd.Series, pd.Series | None]:
    """The policy's and the clinicians' rows of the headline estimator (the first one if absent)."""
    chosen = estimator if estimator in set(frame["estimator"]) else str(frame["estimator"].iloc[0])
    rows = frame[frame["estimator"] == chosen]
    policy = rows[rows["target"] != "clinicians"]
    clinicians = rows[rows["target"] == "clinicians"]
    clinician_row = clinicians.iloc[0] if len(clinicians) else None
    return (policy.iloc[0] if len(policy) else rows.iloc[0]), clinician_row


def headline_reliability(report: OpeReport, row: pd.Series) -> str | None:
    """"not reliable: ESS 1.0 of 90 episodes"-style note for the headline row, None when it is reliable."""
    item = report.estimate(str(row["estimator"]), str(row["target"]))
    return report.reliability(item)


@st.cache_data(max_entries=4, show_spinner="Checking the behaviour model's calibration…")
def behaviour_calibration(report_folder: str, model_file: str | None, dataset_path: str,
                          _dataset: Dataset, split: str) -> pd.DataFrame | None:
    """Reliability of the fitted behaviour model on the report's held-out split, if it was saved."""
    path = Path(report_folder) / Path(model_file).name if model_file else None
    if path is None or not path.is_file():
        return None
    model: Any = models.load_behaviour_model(path)
    rows = _dataset.trajectories[_dataset.trajectories[c.SPLIT] == split]
    if rows.empty:
        return None
    states = rows[list(_dataset.info.state_columns)].to_numpy(dtype=float)
    probabilities = np.asarray(model.action_probabilities(states, _dataset.info.n_actions))
    result = models.calibration_metrics(probabilities, rows[c.ACTION].to_numpy(), n_bins=CALIBRATION_BINS)
    curve: pd.DataFrame = result.reliability
    return curve
