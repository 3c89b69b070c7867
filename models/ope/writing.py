"""The `write_report` stage of `evaluate_policy`: an `OpeEvaluation` (what `estimate_policy_value`
computed) written as one output folder: `ope_report.json`, the estimates table, figures, support
flags, the behaviour model and `manifest.json` last, swapped into place whole or not at all."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dosewise.data_schemas import RunManifest, write_table_atomic
from dosewise.data_schemas.folders import staged_output
from dosewise.data_schemas.io import write_json_atomic
from dosewise.data_schemas.ope import DensityCalibration, OpeReport

from ..behaviour import save_behaviour_model
from . import plots
from .calibration import CalibrationResult

FILES = {"report": "ope_report.json", "estimates": "ope_estimates.parquet", "forest": "ope_forest.png",
         "weights": "ope_weights.png", "heatmap": "action_heatmap.png",
         "calibration": "behaviour_calibration.png", "support": "support_flags.parquet",
         "behaviour_model": "behaviour_model.joblib"}


@dataclass(frozen=True)
class OpeEvaluation:
    """One evaluation, computed and not yet written: the report and what its files are drawn from."""

    report: OpeReport
    support_flags: pd.DataFrame  # one row per evaluated step: recommendation and its support
    behaviour_model: Any  # the fitted classifier or dose density (saved with joblib)
    trajectory_weights: dict[str, np.ndarray]  # per target: each episode's importance weight
    logged_actions: np.ndarray  # (rows,) the clinicians' action bins
    recommended: np.ndarray  # (rows,) the policy's action bins
    action_grid: list[int]
    calibration: CalibrationResult
    density_calibration: DensityCalibration | None
    inputs: dict[str, str]  # input file -> SHA-256, recorded in the output manifest


def write_evaluation(evaluation: OpeEvaluation, out_dir: Path) -> None:
    """Write every file of `evaluation` into `out_dir` (staged; the manifest last)."""
    report = evaluation.report
    with staged_output(Path(out_dir)) as work:
        write_table_atomic(evaluation.support_flags, work / FILES["support"])
        save_behaviour_model(evaluation.behaviour_model, work / FILES["behaviour_model"])
        write_table_atomic(report.estimates_frame(), work / FILES["estimates"])
        plots.forest_plot(report.estimates, work / FILES["forest"], bounds=report.support_bounds)
        plots.weight_histogram(evaluation.trajectory_weights, work / FILES["weights"])
        plots.action_heatmap(evaluation.logged_actions, evaluation.recommended, evaluation.action_grid,
                             work / FILES["heatmap"])
        if evaluation.density_calibration is not None:
            plots.pit_histogram(evaluation.density_calibration, work / FILES["calibration"])
        else:
            calibration = evaluation.calibration
            plots.reliability_plot(calibration.reliability, work / FILES["calibration"], calibration.ece)
        write_json_atomic(work / FILES["report"], report.model_dump(mode="json"))
        run = RunManifest.start("ope_report", report.config, seed=int(report.config["seed"]),
                                inputs=dict(evaluation.inputs))
        run.extra["policy_name"] = report.policy_name
        run.record_outputs(work)
        run.write(work)
