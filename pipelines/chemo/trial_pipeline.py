"""`run_trial_into`: a trial registry (mapping `design = "trial"`) -> decision-step trajectories.

Stages: sources (read; the declared row filter and pivot; on Spark per group of patients,
`spark_trial.py`), records (mapping, arm check, schema),
outcomes (endpoint and IPCW reward at the horizon), trajectories (steps, splits), outputs. The same
machinery as the cycle registry: staged output, quarantine with reasons, pseudonymised ids,
patient-level splits, the manifest last. The manifest records each arm's Kaplan-Meier estimate at
the horizon (all patients and per split), the outcome OPE of "always arm k" is checked against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dosewise.data_schemas import (
    RunManifest,
    TrajectoryDatasetInfo,
    counts_by_rule,
    sha256_file,
    trajectory_schema_for,
    validate_frame,
    write_table_atomic,
)
from dosewise.data_schemas import columns as c

from ..outputs import write_frame_quarantine
from ..privacy import RunIds
from ..runner import StageRunner
from .censoring import ipcw_outcome, kaplan_meier_at
from .config import ChemoPipelineConfig
from .manifests import episode_ids as patient_episode_ids
from .manifests import finish_manifest, redacted_config
from .mapping import RegistryMapping
from .trial import arm_index, endpoint, read_trial_records, trial_spec
from .trial_steps import TrialSteps, decision_steps

STAGES = ("sources", "records", "outcomes", "trajectories", "outputs")


def trial_reward_description(config: ChemoPipelineConfig) -> str:
    """One sentence for the manifest."""
    r = config.reward
    what = "alive" if r.outcome == "survival" else "alive and free of progression/recurrence"
    strata = "within each randomised arm" if r.censoring_strata == "first_action" else "pooled over arms"
    if r.censoring == "ipcw_km":
        censor = (
            f"divided by G(horizon-), the Kaplan-Meier probability of still being followed at the "
            f"horizon ({strata}); a patient censored before the horizon gets 0 (IPCW). Every episode "
            "ends terminal"
        )
    else:
        censor = "a patient censored before the horizon gets 0 and ends as a timeout"
    return (
        f"+{r.outcome_reward:g} on the last decision step if {what} at day {r.horizon_days} after "
        f"randomisation, {censor}. Trial records hold no toxicity grades: no penalties. Undiscounted."
    )


def observed_by_arm(
    time: np.ndarray,
    event: np.ndarray,
    arms: np.ndarray,
    labels: list[str],
    horizon: float,
    split: pd.Series | None = None,
) -> dict[str, Any]:
    """Kaplan-Meier event-free probability at the horizon per arm, for all patients and each split."""
    out: dict[str, Any] = {}
    groups = {"all": np.ones(len(time), bool)}
    if split is not None:
        groups.update({name: (split == name).to_numpy() for name in c.SPLITS})
    for name, rows in groups.items():
        out[name] = {}
        for k, label in enumerate(labels):
            pick = rows & (arms == k)
            if pick.any():
                km = kaplan_meier_at(time[pick], event[pick], horizon)
                out[name][label] = {
                    "km": km.survival,
                    "ci_low": km.ci_low,
                    "ci_high": km.ci_high,
                    "n": km.n,
                    "events": km.n_events,
                    "censored_before": km.n_censored_before,
                }
    return out


def _steps_with_rewards(
    steps: TrialSteps, outcome: pd.DataFrame, config: ChemoPipelineConfig
) -> pd.DataFrame:
    outcome = outcome.rename(columns={"reward": "_outcome_reward", "known": "_known"})
    frame = steps.frame.merge(
        outcome[["patient_id", "_outcome_reward", "_known"]], on="patient_id", how="left"
    )
    last = frame[c.STEP] == frame.groupby("patient_id", sort=False)[c.STEP].transform("max")
    ipcw = config.reward.censoring == "ipcw_km"
    frame[c.REWARD] = np.where(last, frame["_outcome_reward"] * config.reward.outcome_reward, 0.0)
    frame[c.TERMINAL] = last & (ipcw | frame["_known"])
    frame[c.TIMEOUT] = last & ~frame[c.TERMINAL]
    return frame.drop(columns=["_outcome_reward", "_known"])


def _outcomes(
    patients: pd.DataFrame, config: ChemoPipelineConfig, mapping: RegistryMapping
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per patient: endpoint days and event, outcome known at the horizon, the (IPCW) reward; and
    G(horizon-) per censoring stratum."""
    spec = trial_spec(mapping)
    time, event = endpoint(patients, config.reward)
    arms = arm_index(patients, spec)
    strata = arms if config.reward.censoring_strata == "first_action" else np.zeros(len(arms), np.int64)
    reward, known, g = ipcw_outcome(time, event, float(config.reward.horizon_days), strata)
    if config.reward.censoring == "timeout":
        reward = np.where(known & (reward > 0), 1.0, 0.0)
    out = pd.DataFrame(
        {
            "patient_id": patients["patient_id"].to_numpy(),
            "arm": patients["arm"].to_numpy(),
            "endpoint_days": time,
            "endpoint_event": event,
            "known": known,
            "reward": reward,
        }
    )
    named = {spec.arms[int(k)] if strata is arms else "all arms": v for k, v in g.items()}
    return out, named


def _trajectories(
    steps: TrialSteps,
    outcome: pd.DataFrame,
    ids: dict[str, str],
    config: ChemoPipelineConfig,
    mapping: RegistryMapping,
) -> tuple[pd.DataFrame, TrajectoryDatasetInfo]:
    """Steps with rewards, ends, ids and (single-stage trials) the known randomisation probability."""
    spec = trial_spec(mapping)
    frame = _steps_with_rewards(steps, outcome, config)
    frame[c.EPISODE_ID] = frame["patient_id"].astype(str).map(ids)
    probs = spec.arm_probabilities()
    known = probs is not None and not spec.stages
    columns = [c.EPISODE_ID, c.STEP, c.BIN_START, *steps.state_columns, c.ACTION]
    if known and probs is not None:
        frame[c.BEHAVIOUR_PROB] = np.asarray(probs)[frame[c.ACTION].to_numpy()]
        columns.append(c.BEHAVIOUR_PROB)
    n_actions = max(len(labels) for labels in steps.stage_labels)
    info = TrajectoryDatasetInfo(
        state_columns=list(steps.state_columns),
        n_actions=n_actions,
        action_grid=[n_actions],
        bin_hours=None,
        has_behaviour_prob=known,
        ids_pseudonymised=config.output.pseudonymize_ids,
        reward_description=trial_reward_description(config),
        action_labels=list(spec.arms) if not spec.stages else [],
    )
    frame = frame[[*columns, c.REWARD, c.TERMINAL, c.TIMEOUT]]
    frame = frame.sort_values([c.EPISODE_ID, c.STEP], kind="stable").reset_index(drop=True)
    return validate_frame(frame, trajectory_schema_for(info), "trial trajectories"), info


def _extra(
    config: ChemoPipelineConfig,
    mapping: RegistryMapping,
    outcome: pd.DataFrame,
    steps: TrialSteps,
    g: dict[str, float],
    split_of: pd.Series,
    info: TrajectoryDatasetInfo,
) -> dict[str, Any]:
    """Manifest notes: design, actions per stage, propensity, censoring, observed outcome by arm."""
    spec = trial_spec(mapping)
    horizon = float(config.reward.horizon_days)
    time = outcome["endpoint_days"].to_numpy(np.float64)
    event = outcome["endpoint_event"].to_numpy(bool)
    arms = arm_index(outcome, spec)
    probs = spec.arm_probabilities()
    two = steps.frame.groupby("patient_id").size()
    return {
        "source_format": "registry",
        "design": "trial",
        "n_episodes": len(outcome),
        "n_episodes_by_steps": {str(k): int(v) for k, v in two.value_counts().sort_index().items()},
        "stage_action_labels": steps.stage_labels,
        "stages": ["randomised arm", *(s.name for s in spec.stages)],
        "randomisation_propensity": dict(zip(spec.arms, probs, strict=True)) if probs else "unknown",
        "behaviour_prob": "known randomisation probability (config trial.propensity)"
        if info.has_behaviour_prob
        else "absent: later stages are not randomised; the OPE fits the behaviour model"
        if spec.stages
        else "absent (trial.propensity = unknown)",
        "endpoint": config.reward.outcome,
        "horizon_days": config.reward.horizon_days,
        "censoring": config.reward.censoring,
        "censoring_survival_at_horizon": g,
        "outcome_known": int(outcome["known"].sum()),
        "filled_values": steps.filled,
        "observed_by_arm": observed_by_arm(time, event, arms, list(spec.arms), horizon, split_of),
        "ipcw_mean_by_arm": {
            label: float(outcome["reward"][arms == k].mean())
            for k, label in enumerate(spec.arms)
            if (arms == k).any()
        },
    }


def _cohort(
    outcome: pd.DataFrame,
    traj: pd.DataFrame,
    ids: dict[str, str],
    steps: TrialSteps,
    mapping: RegistryMapping,
    raw: bool,
) -> pd.DataFrame:
    """One row per episode: arm, endpoint, IPCW reward, steps and each later stage's action label."""
    spec = trial_spec(mapping)
    out = outcome.assign(episode_id=outcome["patient_id"].astype(str).map(ids))
    out = out.rename(columns={"reward": "ipcw_reward", "known": "outcome_known"})
    per = traj.groupby(c.EPISODE_ID).size().rename("n_steps")
    out = out.merge(per, left_on="episode_id", right_index=True, how="inner")
    for number, stage in enumerate(spec.stages, start=1):
        rows = steps.frame[steps.frame["stage"] == number] if "stage" in steps.frame else steps.frame.iloc[:0]
        label = rows.set_index("patient_id")[c.ACTION].map(dict(enumerate(stage.labels)))
        out[f"{stage.name}_action"] = out["patient_id"].map(label)
    cols = [
        "episode_id",
        *(["patient_id"] if raw else []),
        *[x for x in out.columns if x not in ("episode_id", "patient_id")],
    ]
    return out[cols].sort_values("episode_id").reset_index(drop=True)


def run_trial_into(
    config: ChemoPipelineConfig,
    mapping: RegistryMapping,
    source_dir: Path,
    out_dir: Path,
    show_progress: bool,
    ids: RunIds,
    warnings: list[str],
) -> RunManifest:
    """Run the trial stages into the staging folder `out_dir` (see module doc)."""
    spec = trial_spec(mapping)
    runner = StageRunner(STAGES, show_progress)
    manifest = RunManifest.start("chemo_trajectories", redacted_config(config), seed=config.seed)
    try:
        with runner.stage("sources") as log:
            records = read_trial_records(config, source_dir, mapping)
            q = records.reshape_quarantine
            write_frame_quarantine(q, out_dir / "quarantine" / "sources.parquet", ids)
            manifest.inputs = {str(records.path.relative_to(source_dir)): sha256_file(records.path)}
            log.set(
                records.n_source_rows,
                records.n_source_rows - len(q),
                counts_by_rule(q),
                note=f"grain: source rows of {records.path.name}; {records.n_records} records after "
                f"the mapping's row filter and pivot",
            )
        with runner.stage("records") as log:
            q = records.record_quarantine
            write_frame_quarantine(q, out_dir / "quarantine" / "records.parquet", ids)
            patients = records.patients
            log.set(records.n_records, len(patients), counts_by_rule(q), note="grain: one record per patient "
                    "(a record failing several checks is counted once per check by rule)",
                    rows_quarantined=records.n_records - len(patients))
        with runner.stage("outcomes") as log:
            outcome, g = _outcomes(patients, config, mapping)
            log.set(
                len(patients),
                len(outcome),
                note=f"{int(outcome['known'].sum())} outcomes known at day {config.reward.horizon_days}; "
                f"G(horizon-) {', '.join(f'{k} {v:.3f}' for k, v in g.items())}",
            )
        with runner.stage("trajectories") as log:
            episode_ids, splits = patient_episode_ids(patients, config, ids)
            steps = decision_steps(
                patients, spec, outcome["endpoint_days"].to_numpy(), float(config.reward.horizon_days)
            )
            traj, info = _trajectories(steps, outcome, episode_ids, config, mapping)
            log.set(len(patients), len(traj), note="grain: patients in, decision steps out")
        with runner.stage("outputs") as log:
            write_table_atomic(traj, out_dir / "trajectories.parquet")
            write_table_atomic(
                splits.sort_values(c.EPISODE_ID).reset_index(drop=True), out_dir / "splits.parquet"
            )
            cohort = _cohort(outcome, traj, episode_ids, steps, mapping, not config.output.pseudonymize_ids)
            write_table_atomic(cohort, out_dir / "cohort.parquet")
            log.set(len(traj), len(traj), note="written: trajectories, splits, cohort, quarantine")
        split_of = pd.Series(outcome["patient_id"].astype(str).map(episode_ids)).map(
            splits.set_index(c.EPISODE_ID)[c.SPLIT]
        )
        extra = _extra(config, mapping, outcome, steps, g, split_of, info)
    finally:
        runner.close()
    return finish_manifest(manifest, runner, out_dir, info, extra, ids, warnings)
