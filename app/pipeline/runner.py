"""`run_pipeline`: the declared stages in order, resumable, tracked, logged.

- **Resumable**: after a stage finishes, a stage record (`stages/<stage>/manifest.json`, written
  last) keeps the hash of its resolved config, the hashes of its inputs (the manifests of the
  stages it reads, or a listing of the raw folder) and the hash of its output's manifest. A stage
  whose record matches all three is skipped and says so; a failed or killed stage has no record
  and reruns from its start (its output folder is cleared first).
- **Tracking**: one MLflow parent run per invocation, one nested child run per stage (the train
  stage's child is the policy's own training run).
- **Logging**: JSON lines (structlog) in `<run>/run_log.jsonl`: every stage's start, end or skip,
  counts, warnings and failure, with `--quiet` too.
"""

from __future__ import annotations

import hashlib
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from dosewise import models
from dosewise.data_schemas import ConfigError, DosewiseError, RunManifest, config_sha256, sha256_file
from dosewise.data_schemas.io import MANIFEST_NAME

from .config import STAGES, PipelineConfig
from .stages import STAGE_LIST, ResolvedConfigs, RunContext, Stage, StageResult

LOG_NAME = "run_log.jsonl"
RECORD_KIND = "pipeline_stage"
EXIT_REFUSED = 3


@dataclass
class PipelineOutcome:
    """What a run did: one row per stage (title, seconds or `skipped`, summary) and its exit code."""

    out: Path
    log_path: Path
    parent_run_id: str | None
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    refused: bool = False

    @property
    def exit_code(self) -> int:
        """0 done, 3 done but the promotion gate refused."""
        return EXIT_REFUSED if self.refused else 0


def open_log(path: Path) -> Any:
    """A structlog logger writing one JSON object per line to `path` (appending; flushed per line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a", encoding="utf-8")
    return structlog.wrap_logger(
        structlog.WriteLogger(handle),
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.JSONRenderer(sort_keys=True)],
        wrapper_class=structlog.BoundLogger,  # not the global one: d3rlpy's import filters below WARNING
    )


def _listing_sha256(folder: Path) -> str:
    """Hash of a raw folder's file names, sizes and modification times (raw MIMIC is too big to hash
    on every run; any added, removed, resized or rewritten file changes it)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _stage_config(ctx: RunContext, stage: Stage) -> dict[str, Any]:
    c, r = ctx.config, ctx.resolved
    dump = {"source": c.source.model_dump(mode="json"),
            "etl": {"kind": c.etl.kind, "config": r.etl.model_dump(mode="json")},
            "train": r.train.model_dump(mode="json"),
            "evaluate": {"split": c.evaluate.split, "config": r.ope.model_dump(mode="json")},
            "register": c.registry.model_dump(mode="json"),
            "promote": r.promotion.model_dump(mode="json"),
            "ground_truth": {**c.ground_truth.model_dump(mode="json"),
                             "train": r.train.model_dump(mode="json"), "ope": r.ope.model_dump(mode="json")},
            "chemo_leg": c.chemo_leg.model_dump(mode="json"),
            }[stage.name]
    return {"stage": stage.name, "config": dump}


def _inputs(ctx: RunContext, stage: Stage) -> dict[str, str]:
    inputs = {}
    if stage.name == "etl" and ctx.config.source.kind == "path":
        if not ctx.raw_dir.is_dir():
            raise ConfigError(f"`source.path` must be a folder of raw records. Got {ctx.raw_dir}.",
                              "Point source.path at the MIMIC (or registry) folder.")
        inputs["source_listing"] = _listing_sha256(ctx.raw_dir)
    for need in stage.needs:
        record = _record_path(ctx, need)
        if record.is_file():
            inputs[need] = sha256_file(record)
    return inputs


def _record_path(ctx: RunContext, name: str) -> Path:
    return ctx.path(f"stages/{name}/{MANIFEST_NAME}")


def _output_sha(ctx: RunContext, stage: Stage) -> str | None:
    relative = stage.output(ctx)
    path = ctx.path(f"{relative}/{MANIFEST_NAME}") if relative else None
    return sha256_file(path) if path is not None and path.is_file() else None


def _finished(
    ctx: RunContext, stage: Stage, config: dict[str, Any], inputs: dict[str, str]
) -> RunManifest | None:
    """The stage's record if it matches config, inputs and output; else None (the stage must run)."""
    path = _record_path(ctx, stage.name)
    if not path.is_file():
        return None
    try:
        record = RunManifest.read(path.parent)
    except DosewiseError:
        return None
    same = record.config_sha256 == config_sha256(config) and record.inputs == inputs
    if not same or record.extra.get("output_manifest") != _output_sha(ctx, stage):
        return None
    return record


def _run_stage(ctx: RunContext, stage: Stage, log: Any) -> tuple[StageResult, str | None]:
    """Run one stage inside a child MLflow run (train makes its own), with warnings logged."""
    child = None
    if stage.name != "train" and ctx.parent_run_id:
        _, child = models.start_run(ctx.tracking_uri, experiment=ctx.config.experiment, run_name=stage.name,
                                    parent_run_id=ctx.parent_run_id, tags={"dosewise.stage": stage.name})
    if stage.check is not None:
        stage.check(ctx)
    relative = stage.output(ctx)
    if relative:
        shutil.rmtree(ctx.path(relative), ignore_errors=True)  # a killed stage restarts clean
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            result = stage.run(ctx)
    except BaseException:
        if child:
            models.end_run(child, failed=True, tracking_uri=ctx.tracking_uri)
        raise
    for item in caught:
        log.warning("stage_warning", stage=stage.name, message=str(item.message),
                    category=item.category.__name__)
        if not ctx.quiet:
            warnings.showwarning(item.message, item.category, item.filename, item.lineno)
    child = result.values.get("run_id", child)
    if child:
        models.log_to_run(child, metrics={f"stage/{k}": v for k, v in result.counts.items()},
                          tags={"dosewise.stage": stage.name,
                                "dosewise.stage_summary": result.summary[:5000]},
                          tracking_uri=ctx.tracking_uri)
        if stage.name != "train":
            models.end_run(child, tracking_uri=ctx.tracking_uri)
    return result, child


def _write_record(ctx: RunContext, stage: Stage, config: dict[str, Any], inputs: dict[str, str],
                  result: StageResult, seconds: float) -> None:
    record = RunManifest.start(RECORD_KIND, config, inputs=inputs, extra={
        "summary": result.summary, "counts": result.counts, "values": result.values,
        "refused": result.refused, "seconds": seconds, "output_manifest": _output_sha(ctx, stage)})
    record.write(_record_path(ctx, stage.name).parent)


def select_stages(
    config: PipelineConfig, from_stage: str | None, only: str | None
) -> tuple[list[Stage], set[str]]:
    """The enabled stages in order, and the names that must run even when finished (--from, --only)."""
    for option, name in (("--from", from_stage), ("--only", only)):
        if name is not None and name not in STAGES:
            raise ConfigError(f"`{option}` must be one of {', '.join(STAGES)}. Got {name!r}.",
                              "Name a stage of the pipeline.")
    enabled = [s for s in STAGE_LIST if s.enabled(config)]
    names = [s.name for s in enabled]
    for option, name in (("--from", from_stage), ("--only", only)):
        if name is not None and name not in names:
            raise ConfigError(f"`{option}` must name a stage this config runs ({', '.join(names)}). "
                              f"Got {name!r}.",
                              "Enable that stage in the pipeline config.")
    if only is not None:
        return [s for s in enabled if s.name == only], {only}
    forced = set(names[names.index(from_stage):]) if from_stage else set()
    return enabled, forced


def run_pipeline(config: PipelineConfig, *, from_stage: str | None = None, only: str | None = None,
                 tracking_uri: str | None = None, quiet: bool = False,
                 on_stage: Any = None) -> PipelineOutcome:
    """Run the pipeline's stages in order, skipping finished ones; see the module docstring."""
    resolved = ResolvedConfigs.of(config)
    stages, forced = select_stages(config, from_stage, only)
    out = Path(config.out).resolve()
    uri = tracking_uri or str(models.local_store_uri(out))
    ctx = RunContext(config, resolved, out, uri, quiet)
    _preflight(ctx, stages)
    out.mkdir(parents=True, exist_ok=True)
    log = open_log(out / LOG_NAME).bind(run_folder=str(out))
    config_hash = config_sha256(config.model_dump(mode="json"))
    _, ctx.parent_run_id = models.start_run(uri, experiment=config.experiment,
                                            run_name=f"pipeline {out.name}",
                                            tags={"dosewise.pipeline_config_sha256": config_hash})
    outcome = PipelineOutcome(out, out / LOG_NAME, ctx.parent_run_id)
    log.info("pipeline_start", stages=[s.name for s in stages], parent_run_id=ctx.parent_run_id)
    try:
        for number, stage in enumerate(stages, start=1):
            if on_stage is not None:
                on_stage(number, len(stages), stage.title)
            _one_stage(ctx, stage, stage.name in forced, log, outcome)
    except BaseException as exc:
        code = exc.exit_code if isinstance(exc, DosewiseError) else 1
        log.error("pipeline_failed", error=str(getattr(exc, "message", exc)) or type(exc).__name__,
                  error_type=type(exc).__name__, exit_code=code)
        models.end_run(ctx.parent_run_id, failed=True, tracking_uri=uri)
        raise
    models.end_run(ctx.parent_run_id, tracking_uri=uri)
    log.info("pipeline_end", exit_code=outcome.exit_code, refused=outcome.refused)
    return outcome


def _preflight(ctx: RunContext, stages: list[Stage]) -> None:
    """Before anything runs: each stage's inputs will exist, and every check that can run now passes."""
    enabled = {s.name for s in STAGE_LIST if s.enabled(ctx.config)}
    planned: set[str] = set()
    for stage in stages:
        missing = [n for n in stage.needs if n in enabled and n not in planned
                   and not _record_path(ctx, n).is_file()]
        if missing:
            raise ConfigError(f"Stage `{stage.name}` needs the finished stages {', '.join(missing)}. "
                              f"Got none in {ctx.out}.", f"Run without --only, or with --from {missing[0]}.")
        planned.add(stage.name)
        if stage.check is not None:
            stage.check(ctx)


def _one_stage(ctx: RunContext, stage: Stage, forced: bool, log: Any, outcome: PipelineOutcome) -> None:
    for need in stage.needs:  # values of earlier stages (run now or in an earlier invocation)
        if need not in ctx.results and _record_path(ctx, need).is_file():
            ctx.results[need] = dict(RunManifest.read(_record_path(ctx, need).parent).extra.get("values", {}))
    config, inputs = _stage_config(ctx, stage), _inputs(ctx, stage)
    record = None if forced else _finished(ctx, stage, config, inputs)
    if record is not None:
        extra = record.extra
        ctx.results[stage.name] = dict(extra.get("values", {}))
        outcome.refused |= bool(extra.get("refused"))
        log.info("stage_skipped", stage=stage.name, reason="finished with the same config and inputs",
                 counts=extra.get("counts", {}))
        outcome.rows.append((stage.title, "skipped", f"(finished before) {extra.get('summary', '')}"))
        return
    log.info("stage_start", stage=stage.name)
    start = time.perf_counter()
    try:
        result, child = _run_stage(ctx, stage, log)
    except BaseException as exc:
        log.error("stage_failed", stage=stage.name, seconds=round(time.perf_counter() - start, 3),
                  error=str(getattr(exc, "message", exc)), error_type=type(exc).__name__)
        raise
    seconds = time.perf_counter() - start
    ctx.results[stage.name] = result.values
    outcome.refused |= result.refused
    _write_record(ctx, stage, config, inputs, result, seconds)
    log.info("stage_end", stage=stage.name, seconds=round(seconds, 3), counts=result.counts,
             summary=result.summary, refused=result.refused, mlflow_run_id=child)
    outcome.rows.append((stage.title, f"{seconds:.1f}", result.summary))
