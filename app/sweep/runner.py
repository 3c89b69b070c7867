"""`run_sweep`: every trial on Ray Tune, the winner chosen by an OPE lower bound on validation.

1. The trials' configs are built and validated (config.py); the data are prepared (ICU-Sepsis
   episodes are simulated into the sweep folder once) and checked against the training config.
2. Ray: the local machine (`num_cpus` = max_concurrent x cpus_per_trial, no dashboard) or a
   cluster by `address`; an address that does not answer fails in seconds.
3. Tune runs the trials (`trial.run_trial`), each a child MLflow run of the sweep's parent run;
   Tune's state lives in `<out>/tune`, so an interrupted sweep resumes with `Tuner.restore`.
4. Selection: the highest `selection.bound` of `selection.estimator` among finished trials with
   ESS >= `selection.min_ess`. Only the winner is evaluated on test, once, and registered. A rerun
   of a finished sweep finds the winner's test report and its registry version (by run id) and
   registers nothing new.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dosewise import models, pipelines
from dosewise.data_schemas import BadInputError, DosewiseError, RunManifest, write_json_atomic

from ..pipeline.checks import check_training_fits
from ..pipeline.runner import open_log
from .config import SweepConfig, resolve_trials
from .selection import TrialRow, exact_values, rank_correlation, select_winner
from .trial import run_trial, trial_dir

STATE_NAME = "sweep_state.json"
RESULTS_NAME = "sweep_results.json"
LOG_NAME = "sweep_log.jsonl"
CONNECT_TIMEOUT_S = 5.0


@dataclass
class SweepOutcome:
    """The trials (one row each), the winner (None: no trial could be selected), where it all is."""

    out: Path
    rows: list[TrialRow]
    winner: TrialRow | None
    test_summary: str = ""
    registered: str = ""
    rank_correlation: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def connect_ray(address: str | None, num_cpus: int) -> None:
    """Start a local Ray (no dashboard) or join the cluster at `address`; fail fast if it does not answer."""
    import ray

    if address and address != "auto":
        parsed = urlparse(address if "://" in address else f"ray://{address}")
        host, port = parsed.hostname, parsed.port
        if not host or not port:
            raise BadInputError(
                f"`--address` must be ray://HOST:PORT, HOST:PORT or auto. Got {address!r}.",
                "Give the head node's client address, e.g. ray://10.0.0.5:10001.",
            )
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise BadInputError(
                f"Ray at {address} does not answer ({exc}).",
                "Start the cluster (`ray start --head`) or drop --address to run locally.",
            ) from exc
    if ray.is_initialized():  # this process already joined a Ray (checked after the address probe)
        return
    try:
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            # Ray starts its workers at nice 15; on a machine shared with other jobs that starves the
            # trials (measured: 7 s of CPU in 2 min), so a local Ray keeps them at the driver's priority.
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        raise BadInputError(
            f"Could not connect to Ray at {address}: {exc}",
            "Start the cluster, or drop --address to run on this machine.",
        ) from exc


def prepare_data(config: SweepConfig, out: Path) -> Path:
    """The trajectories folder: the configured one, or ICU-Sepsis episodes simulated once into `out/data`."""
    data = config.data
    if data.kind == "path":
        return Path(str(data.path))
    folder = out / "data"
    wanted = {"n_episodes": data.episodes, "seed": data.seed, "split_fractions": list(data.split_fractions)}
    if (folder / "manifest.json").is_file():
        made = RunManifest.read(folder).config
        if all(made.get(k) == v for k, v in wanted.items()):
            return folder
    pipelines.write_icu_sepsis_episodes(
        folder, data.episodes, behaviour="clinician", seed=data.seed, split_fractions=data.split_fractions
    )
    return folder


def shared_behaviour_cache(ope: Any, out: Path) -> Any:
    """The OPE config with `behaviour.cache_dir` = `<out>/behaviour_cache` (unless one is set): every
    trial evaluates the same validation split with the same behaviour config, so the behaviour model
    is fitted once per sweep and loaded by the other trials and the winner's test evaluation
    (models/ope/behaviour_cache.py; each report records its key and hash)."""
    if ope.behaviour.cache_dir is not None:
        return ope
    behaviour = ope.behaviour.model_copy(update={"cache_dir": str(out / "behaviour_cache")})
    return ope.model_copy(update={"behaviour": behaviour})


def _parent_run(config: SweepConfig, out: Path, uri: str) -> str:
    """The sweep's parent MLflow run: the one recorded by an interrupted sweep, else a new one."""
    state = out / STATE_NAME
    if state.is_file():
        return str(json.loads(state.read_text())["parent_run_id"])
    _, parent = models.start_run(
        uri, experiment=config.experiment, run_name=f"sweep {out.name}", tags={"dosewise.sweep": out.name}
    )
    write_json_atomic(state, {"parent_run_id": parent})
    return parent


def _trial_name(trial: Any) -> str:
    """Tune's folder of a trial: short (Tune's default repeats the whole config in the name)."""
    return f"tune_{trial.config['trial']['index']:03d}_{trial.trial_id}"


def _tuner(
    trials: list[tuple[dict[str, Any], Any]],
    job: dict[str, Any],
    config: SweepConfig,
    max_concurrent: int,
    out: Path,
) -> Any:
    from ray import tune

    trainable = tune.with_resources(tune.with_parameters(run_trial, job=job), {"cpu": config.cpus_per_trial})
    path = out / "tune" / "trials"
    if tune.Tuner.can_restore(str(path)):
        return tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=False)
    space = [
        {
            "index": i,
            "label": ", ".join(f"{k}={v}" for k, v in s.items()),
            "train": t.model_dump(mode="json"),
            "settings": s,
        }
        for i, (s, t) in enumerate(trials)
    ]
    return tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(space)},
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, trial_dirname_creator=_trial_name),
        run_config=tune.RunConfig(
            storage_path=str(out / "tune"),
            name="trials",
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )


def run_sweep(
    config: SweepConfig,
    *,
    address: str | None = None,
    max_concurrent: int | None = None,
    tracking_uri: str | None = None,
    quiet: bool = False,
) -> SweepOutcome:
    """Run the sweep (resuming an interrupted one), select, test and register the winner."""
    base, trials, ope = resolve_trials(config)
    out = Path(config.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ope = shared_behaviour_cache(ope, out)
    log = open_log(out / LOG_NAME).bind(sweep_folder=str(out))
    trajectories = prepare_data(config, out)
    check_training_fits(trajectories, base)
    concurrent = max_concurrent or config.max_concurrent
    connect_ray(address, num_cpus=max(1, int(concurrent * config.cpus_per_trial)))
    uri = tracking_uri or str(models.local_store_uri(out))
    parent = _parent_run(config, out, uri)
    job = {
        "out": str(out),
        "trajectories": str(trajectories),
        "tracking_uri": uri,
        "experiment": config.experiment,
        "parent_run_id": parent,
        "ope": ope.model_dump(mode="json"),
        "split": config.selection.split,
        "estimator": config.selection.estimator,
        "bound": config.selection.bound,
    }
    log.info("sweep_start", trials=len(trials), address=address or "local", parent_run_id=parent)
    started = time.perf_counter()
    results = _tuner(trials, job, config, concurrent, out).fit()
    tune_seconds = time.perf_counter() - started
    rows = _rows(results, trials)
    for row in rows:
        log.info("trial_end", **row.as_dict())
    if config.data.kind == "icu_sepsis":
        exact_values(rows)
    winner = select_winner(rows, config.selection.min_ess)
    outcome = SweepOutcome(out, rows, winner, rank_correlation=rank_correlation(rows))
    outcome.extra["tune_seconds"] = tune_seconds
    if winner is not None:
        _finish_winner(config, outcome, trajectories, ope, uri)
    write_json_atomic(
        out / RESULTS_NAME,
        {
            "trials": [r.as_dict() for r in rows],
            "winner": winner and winner.index,
            "test": outcome.test_summary,
            "registered": outcome.registered,
            "rank_correlation": outcome.rank_correlation,
        },
    )
    models.end_run(parent, tracking_uri=uri)
    log.info(
        "sweep_end",
        winner=winner and winner.index,
        registered=outcome.registered,
        already_complete=bool(outcome.extra.get("already_complete")),
        failed=sum(r.status == "failed" for r in rows),
    )
    return outcome


def _trial_index(result: Any) -> int:
    """A trial's index: from its config, or (Tune restores errored trials without one) its folder name."""
    if result.config:
        return int(result.config["trial"]["index"])
    found = re.search(r"(?:^tune_|index_)(\d+)", Path(str(result.path)).name)
    if found is None:
        raise DosewiseError(f"Cannot tell which trial {result.path} is.",
                            "Delete the sweep folder and rerun the sweep.")
    return int(found.group(1))


def _rows(results: Any, trials: list[tuple[dict[str, Any], Any]]) -> list[TrialRow]:
    rows = []
    for result in results:
        index = _trial_index(result)
        metrics = result.metrics or {}
        error = result.error
        rows.append(
            TrialRow(
                index=index,
                settings=trials[index][0],
                status="failed" if error is not None or "score" not in metrics else "finished",
                score=metrics.get("score"),
                estimate=metrics.get("estimate"),
                ess=metrics.get("ess"),
                run_id=metrics.get("run_id"),
                policy_dir=metrics.get("policy_dir"),
                error=_first_line(error),
                seconds=metrics.get("seconds"),
                cpu_seconds=metrics.get("cpu_seconds"),
                behaviour_model=metrics.get("behaviour_model"),
            )
        )
    return sorted(rows, key=lambda r: r.index)


def _first_line(error: Any) -> str | None:
    if error is None:
        return None
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__


def _registered_winner(config: SweepConfig, run_id: str, uri: str) -> Any:
    """The registry version of `config.registry.name` made from the winner's run, if any (a finished
    sweep that is rerun finds it and registers nothing new)."""
    found = [
        v for v in models.list_registered_policies(tracking_uri=uri)
        if v.name == config.registry.name and v.run_id == run_id
    ]
    return max(found, key=lambda v: int(v.version)) if found else None


def _finish_winner(
    config: SweepConfig, outcome: SweepOutcome, trajectories: Path, ope: Any, uri: str
) -> None:
    """Evaluate the winner once on test and register it; a rerun of a finished sweep reuses both."""
    winner = outcome.winner
    if winner is None or not winner.policy_dir or not winner.run_id:  # the caller checks this first
        raise RuntimeError("The sweep has no finished winning trial with a saved policy to test.")
    from dosewise.data_schemas import OpeReport

    from ..pipeline.stages import headline

    test_dir = trial_dir(outcome.out, winner.index) / "ope_test"
    report_path = test_dir / "ope_report.json"
    if report_path.is_file() and (test_dir / "manifest.json").is_file():  # tested by an earlier run
        report = OpeReport.model_validate_json(report_path.read_text(encoding="utf-8"))
    else:
        report = models.evaluate_tracked(
            trajectories, Path(winner.policy_dir), ope, split="test", out_dir=test_dir,
            tracking_uri=uri, show_progress=False,
        ).report
    existing = _registered_winner(config, winner.run_id, uri)
    outcome.extra["already_complete"] = existing is not None
    if existing is not None:  # registered by an earlier run; alias it only if that run stopped before
        registered = existing
        if config.registry.alias not in existing.aliases:
            registered = models.alias_policy(
                existing.name, existing.version, config.registry.alias, tracking_uri=uri
            )
    else:
        registered = models.register_policy(
            winner.run_id, config.registry.name, alias=config.registry.alias, tracking_uri=uri
        )
    outcome.test_summary = f"test WIS/WDR: {headline(report, 'WIS')} / {headline(report, 'WDR')}"
    outcome.registered = (
        f"models:/{config.registry.name}@{config.registry.alias} = version {registered.version}"
    )
