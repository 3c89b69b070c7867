"""`train_policy`: trajectories folder + `TrainConfig` -> a saved, loadable policy folder.

The loop samples whole batches on the model's device (`sampling.py`) and calls the algorithm's
gradient step directly; `sampler = "d3rlpy"` runs d3rlpy's own `fitter()` instead, for
comparison. Metrics are averaged per `log_every` steps and sent to a d3rlpy `LoggerAdapterFactory`
(MLflow plugs in there); by default nothing is written outside `out_dir`.
"""

from __future__ import annotations

import csv
import io
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dosewise.data_schemas import ConfigError, RunManifest, staged_output, write_text_atomic
from dosewise.data_schemas.console import progress

from .algorithms import PLANNING_ALGORITHMS
from .bins import continuous_spec, representative_doses
from .config import TrainConfig
from .datasets import TrainingData, load_training_data
from .device import resolve_device, seed_everything
from .distributed import DistributedContext, check_batch_split, gather_digests, shard_transitions
from .masks import build_admissible_actions, mask_module, with_bin_median_candidates, with_dose_candidates
from .policy import TrainedPolicy, build_algo, save_policy
from .sampling import TransitionSampler, compile_gradient_steps, update_step

MANIFEST_KIND = "trained_policy"


@dataclass
class TrainResult:
    """Where the policy was saved, its last averaged metrics, and the whole metric history."""

    policy_dir: Path
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    device: str = "cpu:0"
    seconds: float = 0.0


def _meta(config: TrainConfig, data: TrainingData) -> dict[str, Any]:
    info = data.info
    dose_columns = [col for col in info.continuous_action_columns if col in data.frame.columns]
    doses = representative_doses(data.frame, dose_columns, info)
    meta: dict[str, Any] = {
        "name": config.algorithm.name, "action_space": data.action_space,
        "feature_names": data.feature_names, "n_actions": info.n_actions, "dose_columns": dose_columns,
        "scaler": data.scaler.to_dict(), "action_bin_edges": info.action_bin_edges,
        "action_grid": list(info.action_grid), "representative_doses": doses.tolist(),
        "config": config.model_dump(mode="json"), "data_manifest_sha256": data.manifest_sha256,
        "data_id_salt_fingerprint": data.id_salt_fingerprint,
        "data_stats": data.stats,
        "bcq_flexibility": getattr(config.algorithm, "action_flexibility", None),
        "continuous": None, "dose_bounds": None,
    }
    if data.dose_scaler is not None:
        meta["continuous"] = continuous_spec(info, data.dose_scaler, doses)
        meta["dose_bounds"] = data.dose_scaler.to_dict()
    return meta


def _projection_agreement(policy: TrainedPolicy, data: TrainingData) -> float:
    """Share of train rows whose logged doses project to their logged action bin (a check that
    the bin edges and the dose columns agree)."""
    spec = policy.meta["continuous"]
    doses = data.frame[policy.dose_columns].to_numpy(np.float64)
    edges = np.asarray(spec["inner_edges"])
    per_dim = (doses[:, :, None] >= edges[None]).sum(axis=2)
    projected = (per_dim * np.asarray(spec["strides"])[None]).sum(axis=1)
    return float((projected == data.frame["action"].to_numpy()).mean())


class _Logger:
    """Averages step metrics and forwards them to a d3rlpy logger adapter."""

    def __init__(self, factory: Any, algo: Any, config: TrainConfig, name: str) -> None:
        self.adapter = factory.create(algo, name, config.log_every)
        self.adapter.write_params(config.model_dump(mode="json"))
        self.sums: dict[str, list[float]] = defaultdict(list)
        self.history: list[dict[str, float]] = []

    def add(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.sums[key].append(value)

    def commit(self, epoch: int, step: int, extra: dict[str, float]) -> dict[str, float]:
        row = {f"train/{k}": float(np.mean(v)) for k, v in self.sums.items()} | extra
        self.adapter.before_write_metric(epoch, step)
        for key, value in row.items():
            self.adapter.write_metric(epoch, step, key, value)
        self.adapter.after_write_metric(epoch, step)
        self.history.append({"step": float(step), **row})
        self.sums.clear()
        return row


def _sampler(data: TrainingData, config: TrainConfig, device: str,
             ddp: DistributedContext | None) -> TransitionSampler:
    """The whole split's sampler, or under DDP this rank's shard with its share of the batch."""
    if ddp is None:
        return TransitionSampler(data.transitions(), config.batch_size, device, config.seed)
    batch = check_batch_split(config.batch_size, ddp.world_size)
    shard = shard_transitions(data.transitions(), ddp)
    return TransitionSampler(shard, batch, device, config.seed + ddp.rank)


def _loop(algo: Any, sampler: TransitionSampler, config: TrainConfig, log: _Logger, show: bool) -> None:
    started, done = time.perf_counter(), 0
    steps = progress(range(1, config.n_steps + 1), desc=f"train {config.algorithm.name}",
                     total=config.n_steps, show=show)
    for step in steps:
        log.add(update_step(algo, sampler.sample()))
        if step % config.log_every == 0 or step == config.n_steps:
            rate = (step - done) / max(time.perf_counter() - started, 1e-9)
            row = log.commit((step - 1) // config.log_every + 1, step, {"train/updates_per_s": rate})
            if hasattr(steps, "set_postfix"):
                steps.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in row.items()})
            started, done = time.perf_counter(), step


def _fit_d3rlpy(algo: Any, data: TrainingData, config: TrainConfig, log: _Logger, show: bool) -> None:
    from d3rlpy.logging import NoopAdapterFactory

    per_epoch = config.log_every if config.n_steps % config.log_every == 0 else config.n_steps
    started = time.perf_counter()
    for epoch, metrics in algo.fitter(data.mdp_dataset(), n_steps=config.n_steps, n_steps_per_epoch=per_epoch,
                                      logger_adapter=NoopAdapterFactory(), show_progress=show):
        rate = per_epoch / max(time.perf_counter() - started, 1e-9)
        log.add({k: v for k, v in metrics.items() if not k.startswith("time_")})
        log.commit(epoch, epoch * per_epoch, {"train/updates_per_s": rate})
        started = time.perf_counter()


def train_policy(
    trajectories_dir: Path, config: TrainConfig, *, out_dir: Path,
    logger_factory: Any = None, show_progress: bool = True, ddp: DistributedContext | None = None,
    device: str | None = None,
) -> TrainResult:
    """Train `config.algorithm` on the trajectories' `config.split` and save the policy in `out_dir`.

    `logger_factory` follows d3rlpy's `LoggerAdapterFactory` protocol (e.g. the MLflow adapter).
    Under DDP (`ddp`, from `distributed.init_distributed`, with its `device`) every rank trains on
    its shard; rank 0 alone saves the policy and calls the logger's `save_model`.
    """
    from d3rlpy.logging import NoopAdapterFactory

    began = time.perf_counter()
    if ddp is not None and config.sampler != "vectorised":
        raise ConfigError("`--ddp` must be used with `sampler = \"vectorised\"`. Got sampler = \"d3rlpy\".",
                          "Drop --set sampler=d3rlpy: d3rlpy's own sampler is not sharded per rank.")
    device = device or resolve_device(config.device)
    seed_everything(config.seed, device, config.threads)
    data = load_training_data(Path(trajectories_dir), split=config.split, features=config.features,
                              action_space=config.action_space)
    if config.algorithm.name in PLANNING_ALGORITHMS:  # no network: value iteration on a model
        return _train_planned(data, config, Path(out_dir), logger_factory, device, began)
    mask = build_admissible_actions(data.observations, data.frame["action"].to_numpy(), data.info.n_actions,
                                    config.mask, config.seed)
    if mask is not None and config.mask.uses_dose_candidates and data.dose_scaler is not None:
        columns = [col for col in data.info.continuous_action_columns if col in data.frame.columns]
        unit = data.dose_scaler.to_unit(data.frame[columns].to_numpy(np.float64))
        mask = (with_bin_median_candidates(mask, data.observations, unit, data.frame["action"].to_numpy())
                if config.mask.dose_candidate_rule == "bin_medians" else
                with_dose_candidates(mask, data.observations, unit, config.mask.dose_candidates, config.seed))
    in_target = mask is not None and config.mask.in_target and config.action_space == "discrete"
    algo = build_algo(config, len(data.feature_names), data.action_size, device, enable_ddp=ddp is not None,
                      admissible=mask_module(mask, device) if in_target and mask is not None else None)
    if config.compile and device.startswith("cpu") and config.sampler == "vectorised":
        compile_gradient_steps(algo)
    log = _Logger(logger_factory or NoopAdapterFactory(), algo, config, f"dosewise_{config.algorithm.name}")
    if config.sampler == "vectorised":
        _loop(algo, _sampler(data, config, device, ddp), config, log, show_progress)
    else:
        _fit_d3rlpy(algo, data, config, log, show_progress)
    policy = TrainedPolicy(algo, _meta(config, data), mask)
    final = dict(log.history[-1]) if log.history else {}
    final.pop("step", None)
    if policy.action_space == "continuous":
        final["data/bin_projection_agreement"] = _projection_agreement(policy, data)
    final["data/n_transitions"] = float(len(data.transitions()))
    policy.meta["metrics"] = final
    extra: dict[str, Any] = {"device": device, "data_stats": data.stats}
    if ddp is not None:
        digests = gather_digests(algo, ddp)
        extra["ddp"] = {"world_size": ddp.world_size, "backend": ddp.backend, "rank_weight_sha256": digests}
        if not ddp.is_main:
            return TrainResult(Path(out_dir), final, log.history, device, time.perf_counter() - began)
    out = Path(out_dir)
    with staged_output(out) as work:
        save_policy(work, policy)
        write_text_atomic(work / "metrics.csv", _history_csv(log.history))
        manifest = RunManifest.start(MANIFEST_KIND, config.model_dump(mode="json"), seed=config.seed,
                                     inputs={"trajectories/manifest.json": data.manifest_sha256},
                                     extra=extra)
        manifest.record_outputs(work)
        manifest.write(work)
    log.adapter.save_model(config.n_steps, algo)
    log.adapter.close()
    return TrainResult(out, final, log.history, device, time.perf_counter() - began)


def _train_planned(data: TrainingData, config: TrainConfig, out: Path, logger_factory: Any, device: str,
                   began: float) -> TrainResult:
    """`pessimistic_mbp` (planning.py): fit the model and plan (seconds), then save like any policy."""
    from d3rlpy.logging import NoopAdapterFactory

    from .planning import fit_planned_policy, save_planned_policy

    log = _Logger(logger_factory or NoopAdapterFactory(), None, config, f"dosewise_{config.algorithm.name}")
    policy, metrics = fit_planned_policy(data, config, _meta(config, data))
    log.commit(1, 1, metrics)
    final = {k: v for k, v in log.history[-1].items() if k != "step"}
    final["data/n_transitions"] = float(len(data.transitions()))
    policy.meta["metrics"] = final
    save_planned_policy(out, policy)
    write_text_atomic(out / "metrics.csv", _history_csv(log.history))
    manifest = RunManifest.start(MANIFEST_KIND, config.model_dump(mode="json"), seed=config.seed,
                                 inputs={"trajectories/manifest.json": data.manifest_sha256},
                                 extra={"device": device, "data_stats": data.stats})
    manifest.record_outputs(out)
    manifest.write(out)
    log.adapter.close()
    return TrainResult(out, final, log.history, device, time.perf_counter() - began)


def _history_csv(history: list[dict[str, float]]) -> str:
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "step", k))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()


def check_algorithm_name(name: str) -> str:
    """Validate an `--algo` name early, with the list of known ones (exit 2 otherwise)."""
    from .algorithms import ALGORITHMS

    if name not in ALGORITHMS:
        raise ConfigError(f"`--algo` must be one of {', '.join(ALGORITHMS)}. Got {name!r}.",
                          "Pick a discrete algorithm for binned actions, a continuous one for doses.")
    return name


__all__ = ["TrainResult", "check_algorithm_name", "train_policy"]
