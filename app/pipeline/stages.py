"""The stages of `dosewise run`: what each one runs, reads and writes.

Every stage is a function of the run context that returns a `StageResult` (a one-line summary,
counts for the log and MLflow, and values later stages need, such as the policy's run id). The
runner (`runner.py`) decides whether a stage runs, records it and tracks it; this module only
calls the layers' public functions. The ETL is looked up by `etl.kind` in `ETL_KINDS`, so a new
pipeline (chemo) is one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dosewise import models, pipelines
from dosewise.data_schemas import ConfigError, RunManifest

from .checks import check_training_fits
from .config import PipelineConfig, resolve_stage


@dataclass(frozen=True)
class EtlKind:
    """An ETL pipeline by the names of its config class and runner in `dosewise.pipelines`.

    The runner takes `(config, source_dir, out_dir, show_progress=...)` and returns the manifest."""

    config_class: str
    runner: str

    def available(self) -> bool:
        """True when this version of `dosewise.pipelines` has both names."""
        return all(hasattr(pipelines, name) for name in (self.config_class, self.runner))


ETL_KINDS: dict[str, EtlKind] = {
    "sepsis": EtlKind("SepsisPipelineConfig", "run_sepsis_pipeline"),
    "chemo": EtlKind("ChemoPipelineConfig", "run_chemo_pipeline"),
}


def etl_kind(name: str) -> EtlKind:
    """The ETL registered as `name`, or a ConfigError listing the ones this version has."""
    known = [k for k, v in ETL_KINDS.items() if v.available()]
    if name not in known:
        raise ConfigError(f"`etl.kind` must be one of {', '.join(known)}. Got {name!r}.",
                          "Use an ETL pipeline that this version of Dosewise ships.")
    return ETL_KINDS[name]


@dataclass
class ResolvedConfigs:
    """The layer configs of each stage, validated before anything runs."""

    etl: Any
    train: Any
    ope: Any
    promotion: Any

    @classmethod
    def of(cls, config: PipelineConfig) -> ResolvedConfigs:
        """Resolve every stage config of `config` (ConfigError naming the stage and key)."""
        kind = etl_kind(config.etl.kind)
        etl = resolve_stage("etl", config.etl.config, config.etl.layer_settings(),
                            getattr(pipelines, kind.config_class), [pipelines.config_folder()])
        search = [models.config_folder()]
        return cls(
            etl=etl,
            train=resolve_stage("train", config.train.config, config.train.settings, models.TrainConfig,
                                search),
            ope=resolve_stage("evaluate", config.evaluate.config, config.evaluate.settings, models.OpeConfig,
                              search),
            promotion=resolve_stage("promote", config.promote.config, config.promote.settings,
                                    models.PromotionConfig, search),
        )


@dataclass
class RunContext:
    """What the stages share: configs, the run folder, the tracking store, earlier results."""

    config: PipelineConfig
    resolved: ResolvedConfigs
    out: Path
    tracking_uri: str
    quiet: bool
    parent_run_id: str | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def path(self, relative: str) -> Path:
        """A path inside the run folder."""
        return self.out / relative

    @property
    def raw_dir(self) -> Path:
        """The raw records: the configured folder, or the synthetic records written by `source`."""
        source = self.config.source
        return Path(source.path) if source.kind == "path" and source.path else self.path("raw")


@dataclass
class StageResult:
    """A finished stage: its summary line, counts (log + MLflow metrics), values for later stages."""

    summary: str
    counts: dict[str, float] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    refused: bool = False


def run_source(ctx: RunContext) -> StageResult:
    """Synthetic MIMIC-IV raw tables (hosp/, icu/) with planted Sepsis-3 cases."""
    source = ctx.config.source
    manifest = pipelines.write_synthetic_icu(ctx.path("raw"), source.stays, seed=source.seed,
                                             show_progress=not ctx.quiet)
    rows = sum(v for v in manifest.extra.get("rows", {}).values() if isinstance(v, int))
    return StageResult(f"{ctx.path('raw')}: {source.stays:,} stays, {rows:,} rows",
                       {"stays": source.stays, "rows": rows})


def run_etl(ctx: RunContext) -> StageResult:
    """The configured ETL: raw records -> a trajectories folder (with quarantine and manifest)."""
    kind = etl_kind(ctx.config.etl.kind)
    runner: Callable[..., RunManifest] = getattr(pipelines, kind.runner)
    folder = ctx.path("trajectories")
    manifest = runner(ctx.resolved.etl, ctx.raw_dir, folder, show_progress=not ctx.quiet)
    quarantined = sum(s.rows_quarantined for s in manifest.stages)
    rows_out = manifest.stages[-1].rows_out if manifest.stages else 0
    episodes = len(pd.read_parquet(folder / "splits.parquet", columns=["split"]))
    check_training_fits(folder, ctx.resolved.train)  # exit 2 now, not after training starts
    funnel = f" (cohort funnel: {manifest.funnel[-1].remaining} kept)" if manifest.funnel else ""
    return StageResult(f"{folder}: {episodes:,} episodes{funnel}, {rows_out:,} rows, "
                       f"{quarantined} rows quarantined (with reasons)",
                       {"episodes": episodes, "rows_out": rows_out, "rows_quarantined": quarantined})


def run_train(ctx: RunContext) -> StageResult:
    """The configured training on the train split, tracked as the pipeline's child run."""
    folder = ctx.path("trajectories")
    tracked = models.train_tracked(folder, ctx.resolved.train, out_dir=ctx.path("policy"),
                                   tracking_uri=ctx.tracking_uri, experiment=ctx.config.experiment,
                                   show_progress=not ctx.quiet, parent_run_id=ctx.parent_run_id)
    counts = {k: v for k, v in tracked.result.metrics.items() if isinstance(v, int | float)}
    return StageResult(f"{ctx.path('policy')}: MLflow run {tracked.run_id[:12]}", counts,
                       {"run_id": tracked.run_id})


def headline(report: Any, estimator: str = "WDR") -> str:
    """Each target's value with its interval and, beside it, why it is not reliable where it is not."""
    parts = []
    for est in report.estimates:
        if est.estimator == estimator:
            note = report.reliability(est)
            parts.append(f"{est.target} {est.value:.2f} [{est.ci_low:.2f}, {est.ci_high:.2f}]"
                         + (f" ({note})" if note else ""))
    return "; ".join(parts)


SMALL_COHORT = ("the demo's synthetic cohort is too small for a reliable OPE of a near-greedy policy (a few "
                "hundred stays, 4-hour steps over 72 h: the importance weights collapse onto a few "
                "episodes); the ICU-Sepsis row checks the same estimators against an exact value")


def gate_summary(report: Any, decision: Any, promoted: bool, synthetic: bool) -> str:
    """The promotion result. An unreliable value is shown with its interval and why, never as a
    comparison that "passes" (no improvement is claimed from it)."""
    item = report.estimate(decision.estimator, report.policy_name)
    note = report.reliability(item)
    if note is None:
        verb = "promoted to champion" if promoted else "kept out of champion by the OPE gate"
        return f"{verb} ({decision.describe()})"
    failing = [name for ok, name in ((decision.beats_clinicians, "value"), (decision.enough_ess, "ESS"),
                                     (decision.within_support, "support")) if not ok]
    outcome = ("promoted to champion by the gate" if promoted
               else f"kept out of champion (gate fails on {', '.join(failing)})")
    return (f"{decision.estimator} {item.value:.3f} [{item.ci_low:.3f}, {item.ci_high:.3f}], {note}; "
            f"{outcome}" + (f"; {SMALL_COHORT}" if synthetic else ""))


def bounds(report: Any) -> str:
    """The policy's support bounds: the range of values the data allow, with its interval."""
    return "; ".join(f"data allow {b.target} [{b.value_low:.2f}, {b.value_high:.2f}] (95 % CI "
                     f"{b.ci_low:.2f} to {b.ci_high:.2f}; {100 * b.share_leaving_support:.0f} % of episodes "
                     "leave the support)" for b in report.support_bounds)


def _ope_counts(report: Any) -> dict[str, float]:
    return {f"{e.estimator.lower()}_{e.target}": float(e.value) for e in report.estimates
            if e.estimator in ("WIS", "WDR")} | {"n_episodes": float(report.n_episodes)}


def run_evaluate(ctx: RunContext) -> StageResult:
    """Off-policy evaluation of the trained policy, logged to its training run."""
    split = ctx.config.evaluate.split
    out_dir = ctx.path(f"policy/ope_{split}")
    tracked = models.evaluate_tracked(ctx.path("trajectories"), ctx.path("policy"), ctx.resolved.ope,
                                      split=split, out_dir=out_dir, tracking_uri=ctx.tracking_uri,
                                      show_progress=not ctx.quiet)
    return StageResult(f"{out_dir}: WDR (95 % CI) {headline(tracked.report)}; {bounds(tracked.report)}",
                       _ope_counts(tracked.report))


def run_register(ctx: RunContext) -> StageResult:
    """The trained policy as a new version of the registered model, with the configured alias."""
    stage = ctx.config.registry
    registered = models.register_policy(ctx.results["train"]["run_id"], stage.name, alias=stage.alias,
                                        tracking_uri=ctx.tracking_uri)
    return StageResult(f"models:/{stage.name}@{stage.alias} = version {registered.version}",
                       {"version": float(registered.version)}, {"version": str(registered.version)})


def run_promote(ctx: RunContext) -> StageResult:
    """The OPE promotion gate for `champion`; a refusal is a result (exit 3), not a failure."""
    from dosewise.data_schemas import OpeReport

    name, version = ctx.config.registry.name, ctx.results["register"]["version"]
    path = ctx.path(f"policy/ope_{ctx.config.evaluate.split}/ope_report.json")
    report = OpeReport.model_validate_json(path.read_text(encoding="utf-8"))
    synthetic = ctx.config.source.kind == "synthetic_icu"
    try:
        decision = models.promote_policy(name, version, ctx.resolved.promotion, tracking_uri=ctx.tracking_uri)
    except models.PromotionRefused as refused:
        return StageResult(f"version {version} {gate_summary(report, refused.decision, False, synthetic)}",
                           {"passed": 0.0}, refused=True)
    summary = gate_summary(report, decision, True, synthetic)
    return StageResult(f"version {version} {summary}", {"passed": 1.0})


def run_ground_truth(ctx: RunContext) -> StageResult:
    """ICU-Sepsis: train on clinician episodes, then compare OPE with the policy's exact value."""
    stage, folder = ctx.config.ground_truth, ctx.path("icu_sepsis")
    pipelines.write_icu_sepsis_episodes(folder, stage.episodes, behaviour="clinician", seed=stage.seed)
    result = models.train_policy(folder, ctx.resolved.train, out_dir=folder / "policy",
                                 show_progress=not ctx.quiet)
    policy = models.load_policy(result.policy_dir)
    mdp = pipelines.load_icu_sepsis_mdp()
    states = pd.DataFrame(mdp.state_features, columns=policy.feature_names)
    probs = np.asarray(policy.action_probabilities(states, ctx.resolved.ope.epsilon))
    exact = pipelines.exact_policy_value(probs, mdp)
    low, high = pipelines.support_value_bounds(probs, mdp.clinician_policy, mdp)
    clinicians = pipelines.exact_policy_value(mdp.clinician_policy, mdp)
    report = models.evaluate_policy(folder, policy, ctx.resolved.ope, split="test",
                                    out_dir=folder / "ope_test", show_progress=not ctx.quiet)
    return StageResult(f"exact survival: policy {exact:.3f}, clinicians {clinicians:.3f}; WDR (95 % CI) "
                       f"{headline(report)}; {bounds(report)}; exact range the clinicians' data allow "
                       f"[{low:.2f}, {high:.2f}]",
                       {"exact_policy": exact, "exact_clinicians": clinicians} | _ope_counts(report))


@dataclass
class _ChemoSizes:
    chemo_patients: int
    chemo_truth_patients: int
    train_steps: int
    n_bootstrap: int
    fqe_steps: int


@dataclass
class _ChemoContext:
    """What the chemotherapy leg's steps (`demo_chemo.py`) read: out, quiet, sizes, tracking, results."""

    out: Path
    quiet: bool
    tracking_uri: str
    sizes: _ChemoSizes
    results: dict[str, Any] = field(default_factory=dict)


def run_chemo_leg(ctx: RunContext) -> StageResult:
    """OMOP oncology records -> chemo ETL -> chemo_discrete_cql, OPE beside the MC truth, registry."""
    from ..demo_chemo import step_chemo_etl, step_chemo_policy, step_oncology_records

    leg = ctx.config.chemo_leg
    sizes = _ChemoSizes(leg.patients, leg.truth_patients, leg.train_steps, leg.n_bootstrap, leg.fqe_steps)
    chemo = _ChemoContext(ctx.out, ctx.quiet, ctx.tracking_uri, sizes)
    parts = [step(chemo) for step in (step_oncology_records, step_chemo_etl, step_chemo_policy)]
    return StageResult(" | ".join(parts), {"patients": float(leg.patients)})


@dataclass(frozen=True)
class Stage:
    """A declared stage: its function, its output folder (None: lives in MLflow) and its inputs."""

    name: str
    title: str
    run: Callable[[RunContext], StageResult]
    output: Callable[[RunContext], str | None]
    needs: tuple[str, ...] = ()
    enabled: Callable[[PipelineConfig], bool] = lambda _config: True
    check: Callable[[RunContext], None] | None = None  # bad input (exit 2) before the stage touches anything


def _check_train(ctx: RunContext) -> None:
    if (ctx.path("trajectories") / "manifest.json").is_file():
        check_training_fits(ctx.path("trajectories"), ctx.resolved.train)


STAGE_LIST: tuple[Stage, ...] = (
    Stage("source", "synthetic MIMIC-IV records", run_source, lambda _c: "raw",
          enabled=lambda c: c.source.kind == "synthetic_icu"),
    Stage("etl", "ETL", run_etl, lambda _c: "trajectories", needs=("source",)),
    Stage("train", "train", run_train, lambda _c: "policy", needs=("etl",), check=_check_train),
    Stage("evaluate", "off-policy evaluation", run_evaluate,
          lambda c: f"policy/ope_{c.config.evaluate.split}", needs=("etl", "train")),
    Stage("register", "registry", run_register, lambda _c: None, needs=("train", "evaluate")),
    Stage("promote", "promotion gate", run_promote, lambda _c: None, needs=("register",),
          enabled=lambda c: c.promote.enabled),
    Stage("ground_truth", "ICU-Sepsis ground truth", run_ground_truth, lambda _c: "icu_sepsis",
          enabled=lambda c: c.ground_truth.enabled),
    Stage("chemo_leg", "chemotherapy leg (OMOP -> ETL -> chemo_discrete_cql -> OPE vs truth -> registry)",
          run_chemo_leg, lambda _c: "chemo_trajectories", enabled=lambda c: c.chemo_leg.enabled),
)
