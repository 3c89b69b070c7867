"""One sweep trial, as Ray Tune runs it in a worker: train (a nested MLflow run), OPE on validation.

The function gets only plain data (JSON-able dicts), so it runs the same on this machine's local
Ray and on a cluster where Dosewise is installed. A trial that raises is recorded by Tune as
errored; its MLflow run is marked FAILED and the sweep goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TRIAL_STATUS_TAG = "dosewise.trial_status"


def trial_dir(out: str | Path, index: int) -> Path:
    """The folder of trial `index` inside the sweep folder."""
    return Path(out) / "trials" / f"trial_{index:03d}"


def pick_estimate(report: Any, estimator: str) -> Any:
    """The policy's estimate by `estimator` in an OPE report."""
    for item in report.estimates:
        if item.estimator == estimator and item.target == report.policy_name:
            return item
    raise KeyError(f"{estimator} not in the report")  # excluded up front by the config check


def selection_ess(report: Any, estimate: Any) -> float:
    """The ESS the selection floor checks: the selected estimate's own, else (FQE has no weights) the
    Kish ESS of the policy's WIS (or IS) weights on the same split: how many validation episodes
    follow the policy, whatever estimator values it."""
    if estimate.ess is not None:
        return float(estimate.ess)
    for name in ("WIS", "IS"):
        try:
            ess = pick_estimate(report, name).ess
        except KeyError:
            continue
        if ess is not None:
            return float(ess)
    return 0.0


def train_and_validate(params: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """Train trial `params["index"]` (a child MLflow run) and evaluate it on the validation split."""
    import time

    from dosewise import models

    started, cpu_started = time.perf_counter(), time.process_time()
    index = int(params["index"])
    folder = trial_dir(job["out"], index)
    train = models.TrainConfig.model_validate(params["train"])
    tracked = models.train_tracked(
        Path(job["trajectories"]), train, out_dir=folder / "policy", tracking_uri=job["tracking_uri"],
        experiment=job["experiment"], run_name=f"trial {index}: {params['label']}", show_progress=False,
        parent_run_id=job["parent_run_id"],
    )
    uri = job["tracking_uri"]
    models.log_to_run(tracked.run_id, tags={"dosewise.sweep_trial": str(index), TRIAL_STATUS_TAG: "running"},
                      tracking_uri=uri)
    try:
        ope = models.OpeConfig.model_validate(job["ope"])
        evaluated = models.evaluate_tracked(Path(job["trajectories"]), folder / "policy", ope,
                                            split=job["split"], out_dir=folder / f"ope_{job['split']}",
                                            tracking_uri=uri, show_progress=False)
        estimate = pick_estimate(evaluated.report, job["estimator"])
        behaviour = evaluated.report.behaviour
    except BaseException:
        models.log_to_run(tracked.run_id, tags={TRIAL_STATUS_TAG: "failed"}, tracking_uri=uri)
        raise
    models.log_to_run(tracked.run_id, tags={TRIAL_STATUS_TAG: "finished"}, tracking_uri=uri)
    return {"score": float(getattr(estimate, job["bound"])), "estimate": float(estimate.value),
            "ess": selection_ess(evaluated.report, estimate), "run_id": tracked.run_id,
            "policy_dir": str(folder / "policy"), "index": index, "seconds": time.perf_counter() - started,
            # this process's CPU (all its threads) over the trial: Ray's workers are not below the
            # driver's process, so a bench cannot read their CPU from /proc after the sweep
            "cpu_seconds": time.process_time() - cpu_started,
            "behaviour_model": f"{behaviour.cache} {behaviour.cache_key}" if behaviour.cache_key
            else "fitted"}


def run_trial(config: dict[str, Any], job: dict[str, Any]) -> None:
    """Ray Tune function trainable: one trial (`config["trial"]`), its result reported to Tune."""
    from ray import tune

    tune.report(train_and_validate(config["trial"], job))
