"""What every estimator needs, checked: the evaluated split, the behaviour model and probabilities.

Checks the policy against the data contract (feature names and order, action count), fits the
calibrated behaviour classifier on its split, and picks the behaviour probability of each logged
action: the known `behaviour_prob` column where the data has one, else the classifier's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dosewise.data_schemas import BadInputError, RunManifest, TrajectoryDatasetInfo
from dosewise.data_schemas import columns as c

from ..behaviour import BehaviourPolicyClassifier
from ..behaviour_density import BehaviourDoseDensity
from .calibration import CalibrationResult, calibration_metrics
from .config import BehaviourConfig


def check_policy_matches(policy: Any, info: TrajectoryDatasetInfo) -> list[str]:
    """The policy's feature names must equal the dataset's state columns (names and order)."""
    features = list(policy.feature_names)
    expected = list(info.state_columns)
    if features != expected:
        missing = [f for f in features if f not in expected]
        if missing:
            detail = f"the data lacks {missing[:5]}"
        elif sorted(features) == sorted(expected):
            first = next(i for i, (a, b) in enumerate(zip(features, expected, strict=True)) if a != b)
            detail = (f"same names in a different order (position {first}: policy `{features[first]}`, "
                      f"data `{expected[first]}`)")
        else:
            detail = f"the policy does not use {[f for f in expected if f not in features][:5]}"
        raise BadInputError(
            f"Policy `{policy.name}` was trained on other state features than these trajectories: "
            f"{detail}.",
            "Evaluate on trajectories made by the same ETL config the policy was trained on.",
        )
    if int(policy.n_actions) != info.n_actions:
        raise BadInputError(
            f"Policy `{policy.name}` has {policy.n_actions} actions; the trajectories have {info.n_actions}.",
            "Evaluate on trajectories with the same action binning the policy was trained on.",
        )
    return features


UNRECORDED = "unrecorded"


def _salt_name(fingerprint: str | None) -> str:
    return "none (raw ids)" if fingerprint is None else fingerprint


def check_same_salt(
    policy: Any, manifest: RunManifest, manifest_sha256: str, folder: str, on_mismatch: str
) -> list[str]:
    """The evaluated trajectories must carry the id-salt fingerprint of the policy's training data.

    A rerun of the ETL with another salt gives other pseudonyms and another train/validation/test
    split, so the evaluated split would hold episodes the policy was trained on. `on_mismatch`
    (`OpeConfig.id_salt_mismatch`) makes that an error (exit 2) or a warning returned for the report.
    Policies without training data (constant:K, the clinicians) and folders that are the training
    trajectories themselves (same manifest hash) pass.
    """
    meta = getattr(policy, "meta", None)
    if not isinstance(meta, dict) or meta.get("data_manifest_sha256") == manifest_sha256:
        return []
    raw_ids = manifest.dataset is not None and not manifest.dataset.ids_pseudonymised
    trained = meta.get("data_id_salt_fingerprint", UNRECORDED)
    evaluated = manifest.extra.get("id_salt_fingerprint", None if raw_ids else UNRECORDED)
    if trained == evaluated:
        return []
    if UNRECORDED in (trained, evaluated):
        which = "the policy's training trajectories do" if trained == UNRECORDED else f"{folder} does"
        return [f"The id-salt fingerprint of the policy's training trajectories cannot be compared with "
                f"{folder}'s: {which} not record one. If both came from one source, check they were made "
                "with the same DOSEWISE_ID_SALT, else the evaluated split may hold training episodes."]
    text = (f"Policy `{policy.name}` was trained on trajectories pseudonymised with id-salt fingerprint "
            f"{_salt_name(trained)}, but {folder} has fingerprint {_salt_name(evaluated)}: with another salt "
            "the episode ids and the train/validation/test split differ, so the evaluated split holds "
            "episodes the policy was trained on.")
    if on_mismatch == "error":
        raise BadInputError(
            text, "Re-run the ETL with the training run's salt (DOSEWISE_ID_SALT), or retrain on these "
            "trajectories; for data that shares no patient with the training data (external validation) "
            "pass --set id_salt_mismatch=warn.")
    return [f"{text} Evaluated anyway (id_salt_mismatch = warn): trust it only if the two datasets share "
            "no patient."]


def take_split(frame: pd.DataFrame, split: str, folder: str) -> pd.DataFrame:
    """Rows of one split, ordered by (episode, step); a missing or empty split is an error."""
    if split not in c.SPLITS:
        raise BadInputError(f"Unknown split `{split}`.", f"Use one of {', '.join(c.SPLITS)}.")
    part = frame[frame[c.SPLIT] == split]
    if part.empty:
        present = sorted(frame[c.SPLIT].unique())
        raise BadInputError(
            f"Split `{split}` of {folder} has no episodes (present: {', '.join(present)}).",
            "Pass --split with one of the present splits, or re-run the producer with that split.",
        )
    return part.sort_values([c.EPISODE_ID, c.STEP], kind="stable").reset_index(drop=True)


def fit_behaviour_model(
    fit_rows: pd.DataFrame, features: list[str], config: BehaviourConfig, seed: int,
    info: TrajectoryDatasetInfo | None = None,
) -> BehaviourPolicyClassifier | BehaviourDoseDensity:
    """Fit the behaviour model on (at most `max_fit_rows`, seeded) rows of its split."""
    if len(fit_rows) > config.max_fit_rows:
        fit_rows = fit_rows.sample(n=config.max_fit_rows, random_state=seed)
    if config.model == "dose_density":
        doses = list(info.continuous_action_columns) if info is not None else []
        missing = [d for d in doses if d not in (info.action_bin_edges if info else {}) or d not in fit_rows]
        if info is None or not doses or missing:
            raise BadInputError(
                "`behaviour.model = dose_density` needs dose columns and their action_bin_edges in the "
                "trajectories manifest; these trajectories have none.",
                "Use behaviour.model = classifier (the default) for these trajectories.",
            )
        density = BehaviourDoseDensity(bin_edges=[list(info.action_bin_edges[d]) for d in doses])
        return density.fit(fit_rows[features], fit_rows[doses].to_numpy(np.float64))
    model = BehaviourPolicyClassifier(
        base=config.base, calibration=config.calibration, cv=config.cv,
        max_iter=config.max_iter, random_state=seed,
    )
    return model.fit(fit_rows[features], fit_rows[c.ACTION].to_numpy(np.int64))


@dataclass
class BehaviourProbabilities:
    """Clinicians' full action distribution and the probability of each logged action."""

    clinician: np.ndarray  # (rows, A) classifier probabilities (the clinicians' policy)
    logged: np.ndarray  # (rows,) behaviour probability of the logged action (after the floor)
    source: str  # logged_behaviour_prob | fitted_classifier
    n_floored: int
    calibration: CalibrationResult
    warnings: list[str] = field(default_factory=list)


def behaviour_probabilities(
    model: BehaviourPolicyClassifier | BehaviourDoseDensity,
    rows: pd.DataFrame,
    features: list[str],
    info: TrajectoryDatasetInfo,
    config: BehaviourConfig,
) -> BehaviourProbabilities:
    """Clinicians' probabilities on `rows`, and the logged actions' behaviour probabilities."""
    actions = rows[c.ACTION].to_numpy(np.int64)
    clinician = model.action_probabilities(rows[features], info.n_actions)
    calibration = calibration_metrics(clinician, actions)
    use_logged = config.use_logged_prob and info.has_behaviour_prob and c.BEHAVIOUR_PROB in rows
    if use_logged:
        logged, source = rows[c.BEHAVIOUR_PROB].to_numpy(np.float64), "logged_behaviour_prob"
    else:
        logged, source = clinician[np.arange(len(actions)), actions], "fitted_classifier"
    warnings = []
    low = logged < config.min_prob
    n_floored = int(low.sum()) if config.min_prob > 0 else 0
    if config.min_prob > 0 and n_floored:
        logged = np.maximum(logged, config.min_prob)
        warnings.append(
            f"{n_floored} logged actions had behaviour probability below {config.min_prob:g} "
            f"({source}); they were raised to it, which caps their importance ratios."
        )
    elif np.any(logged <= 0):
        raise BadInputError(
            f"{int(np.sum(logged <= 0))} logged actions have behaviour probability 0 ({source}), so "
            "their importance weights are undefined.",
            "Set `behaviour.min_prob` (e.g. --set behaviour.min_prob=0.001) to floor them; the "
            "report counts how many were floored.",
        )
    return BehaviourProbabilities(clinician, logged, source, n_floored, calibration, warnings)
