"""`evaluate_policy`: every estimator for the policy and the clinicians, with intervals and
diagnostics, written as `ope_report.json` plus figures, support flags and the behaviour model.

It runs as three declared stages (`EVALUATE_STAGES`): `read_trajectories` reads and validates the
trajectories folder once (every split: the evaluated one, the behaviour model's and FQE's fit
splits are taken from it), `estimate_policy_value` computes an `OpeEvaluation` (the report and
what its figures are drawn from) without writing anything, and `write_report`
(`writing.write_evaluation`) writes the output folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dosewise.data_schemas import columns as c
from dosewise.data_schemas.io import MANIFEST_NAME
from dosewise.data_schemas.ope import (
    MIN_ESS_SHARE,
    BehaviourModelInfo,
    BootstrapInfo,
    OpeEstimate,
    OpeReport,
)

from ..datasets import LoadedTrajectories
from .bootstrap import bootstrap_intervals, refit_spread, widen_for_refits
from .bounds import bound_warnings, summarise_bounds
from .config import OpeConfig
from .continuous import resolve_action_space
from .diagnostics import estimator_ess, support_flags, support_summary, weight_summary
from .episodes import episode_layout
from .fqe_report import fqe_note, fqe_refits, tabular_intervals
from .importance_sampling import ImportanceWeights
from .inputs import check_policy_matches, check_same_salt, take_split
from .prepare import prepare_continuous, prepare_discrete
from .propensity import action_propensities
from .targets import CLINICIANS, Q_ESTIMATORS, needs_q
from .terms import RatioTerms
from .writing import FILES, OpeEvaluation, write_evaluation

EVALUATE_STAGES = (
    ("read_trajectories", "trajectories folder -> LoadedTrajectories (read and validated once)"),
    ("estimate_policy_value", "LoadedTrajectories + policy + OpeConfig -> OpeEvaluation (nothing written)"),
    ("write_report", "OpeEvaluation -> out_dir: ope_report.json, figures, support flags, manifest.json"),
)


def _estimates(
    results: dict[str, Any], all_terms: dict[str, RatioTerms], weights: dict[str, ImportanceWeights],
    mask: np.ndarray, n: int, refit_sd: dict[str, float],
    dr_weights: dict[str, ImportanceWeights] | None = None,
) -> tuple[list[OpeEstimate], list[str]]:
    """One `OpeEstimate` per (target, estimator) and the warnings their diagnostics raise; the ESS is
    that of the ratios the estimator used (DR and WDR: `dr_weights` where they clip on their own)."""
    estimates, warnings = [], []
    for key, res in results.items():
        target, name = key.split("|")
        used = (dr_weights or {}).get(target, weights[target]) if name in ("DR", "WDR") else weights[target]
        ess = estimator_ess(name, used, mask)
        estimates.append(OpeEstimate(
            estimator=name, target=target, value=res.value, ci_low=res.ci_low, ci_high=res.ci_high,
            lower_bound_95=res.lower_bound_95, bca_low=res.bca_low, bca_high=res.bca_high, ess=ess,
            ess_share=None if ess is None else ess / n, n_episodes=n, refit_sd=refit_sd.get(key),
        ))
        if ess is not None and ess / n < MIN_ESS_SHARE:
            warnings.append(f"{name} for {target}: effective sample size {ess:.1f} is {100 * ess / n:.1f} % "
                            "of the episodes; the estimate rests on very few of them.")
        if all_terms[key].weight_sum_zero():
            warnings.append(f"{name} for {target}: every importance weight is zero (no logged episode "
                            "follows the policy), so the value is undefined and shown as 0.")
    return estimates, warnings


def evaluate_policy(
    trajectories_dir: Path,
    policy: Any,
    config: OpeConfig,
    *,
    split: str = "test",
    out_dir: Path,
    show_progress: bool = True,
) -> OpeReport:
    """Estimate `policy`'s value (ε-softened) and the clinicians' on one split of a trajectories
    folder, with episode-bootstrap intervals, ESS and support; write the report into `out_dir`.

    The stages of `EVALUATE_STAGES` in order; the folder is read once."""
    trajectories = LoadedTrajectories.read(Path(trajectories_dir))
    evaluation = estimate_policy_value(trajectories, policy, config, split=split, show_progress=show_progress)
    write_evaluation(evaluation, Path(out_dir))
    return evaluation.report


def _config_warnings(config: OpeConfig, split: str, n: int, weights: dict[str, ImportanceWeights],
                     mode: str, dr_weights: dict[str, ImportanceWeights]) -> tuple[list[str], list[str]]:
    """(warnings that lead the report, warnings that follow it) raised by the config and the size."""
    first = [] if n >= config.min_episodes else [
        f"Only {n} episodes in split `{split}` (fewer than {config.min_episodes}): the bootstrap intervals "
        "are not meaningful at this size."]
    last = []
    if config.behaviour.fit_split == split:
        last.append(f"The behaviour model was fitted on the evaluated split `{split}`; its calibration "
                    "is measured in-sample.")
    clip = config.ratio_clip(mode)
    if clip is not None:
        clipped = sum(w.n_clipped for w in weights.values())
        setting = "max_weight" if clip == config.max_weight else "continuous.max_ratio"
        last.append(f"Per-step importance ratios were clipped at {clip:g} (`{setting}`; {clipped} ratios, "
                    "all targets): clipping trades the heaviest weights' variance for a bias that the "
                    "intervals do not include.")
    if dr_weights:
        dr_clip = config.dr_ratio_clip(mode)
        last.append(f"Inside DR and WDR the ratios were clipped at {dr_clip:g} (`continuous.dr_max_ratio`; "
                    f"{sum(w.n_clipped for w in dr_weights.values())} ratios, all targets): their FQE term "
                    "carries the value where a ratio is cut.")
    return first, last


def _cache_fields(prepared: Any) -> dict[str, Any]:
    """The report's record of the behaviour-model cache (`behaviour.cache_dir`)."""
    fit = prepared.behaviour_fit
    if fit is None or fit.cache == "off":
        return {}
    return {"cache": fit.cache, "cache_key": fit.key, "model_sha256": fit.model_sha256}


def estimate_policy_value(
    trajectories: LoadedTrajectories,
    policy: Any,
    config: OpeConfig,
    *,
    split: str = "test",
    show_progress: bool = True,
) -> OpeEvaluation:
    """The `estimate_policy_value` stage: every estimator, interval and diagnostic for `policy` and
    the clinicians on `split` of trajectories read already; returns the report unwritten."""
    folder, info, frame = trajectories.folder, trajectories.info, trajectories.frame
    features = check_policy_matches(policy, info)
    salt_warnings = check_same_salt(policy, trajectories.manifest, trajectories.manifest_sha256, str(folder),
                                    config.id_salt_mismatch)
    mode = resolve_action_space(policy, info, config)
    rows = take_split(frame, split, str(folder))
    fit_rows = take_split(frame, config.behaviour.fit_split, str(folder))
    layout = episode_layout(rows)
    mask, actions = layout.mask, rows[c.ACTION].to_numpy(np.int64)
    label = policy.name if policy.name != CLINICIANS else f"{policy.name} (policy)"
    prepare = prepare_continuous if mode == "continuous" else prepare_discrete
    prepared = prepare(trajectories, policy, label, rows, fit_rows, features, info, config, layout, split,
                       show_progress)
    terms, returns, warnings = prepared.terms, prepared.returns_range, [*salt_warnings, *prepared.warnings]
    all_terms, weights, bound_terms = terms.all_terms, terms.weights, terms.bound_terms
    if not needs_q(config) and set(Q_ESTIMATORS) & set(config.estimators):
        warnings.append("FQE is disabled (fqe.enabled = false): DR, WDR and FQE were not computed.")
    results = bootstrap_intervals({**all_terms, **bound_terms}, n_resamples=config.n_bootstrap,
                                  seed=config.seed, confidence=config.confidence, bca=config.bca,
                                  show_progress=show_progress)
    bounds = [summarise_bounds(t, results.pop(f"{t}|low"), results.pop(f"{t}|high"), returns,
                               config.value_range is not None, config.support_threshold,
                               bound_terms[f"{t}|low"])
              for t in prepared.targets if f"{t}|low" in bound_terms]
    refit_sd = {key: refit_spread(values) for key, values in terms.refit_values.items()}
    results = {key: widen_for_refits(res, refit_sd[key], config.confidence, len(terms.refit_values[key]))
               if key in refit_sd else res for key, res in results.items()}
    support, choice = tabular_intervals(results, terms.tabular, layout, config, returns), prepared.fqe_choice
    n = layout.n_episodes
    estimates, estimate_warnings = _estimates(results, all_terms, weights, mask, n, refit_sd,
                                              terms.dr_weights)
    first, last = _config_warnings(config, split, n, weights, mode, terms.dr_weights)
    warnings = first + warnings + estimate_warnings + bound_warnings(bounds, estimates) + last
    model, calibration = prepared.model, prepared.calibration
    by_action = (action_propensities(model, fit_rows, rows, features, info, config)
                 if mode == "discrete" else [])
    flags = support_flags(rows, prepared.recommended, prepared.prob_recommended, config.support_threshold)
    report = OpeReport(
        policy_name=policy.name, trajectories=str(folder), split=split, n_episodes=n, n_steps=len(rows),
        gamma=config.gamma, epsilon=config.epsilon if mode == "discrete" else 0.0,
        max_weight=config.ratio_clip(mode), action_space=mode, estimates=estimates,
        dr_max_weight=config.dr_ratio_clip(mode) if terms.dr_weights else None,
        weights=[weight_summary(t, w) for t, w in weights.items()],
        behaviour=BehaviourModelInfo(
            source=prepared.source,
            estimator=model.describe(), fitted_on=config.behaviour.fit_split,
            n_fit_rows=int(min(config.behaviour.max_fit_rows, len(fit_rows))),
            heldout_split=split, heldout_log_loss=calibration.log_loss,
            heldout_ece=calibration.ece, heldout_accuracy=calibration.accuracy,
            min_behaviour_prob=config.behaviour.min_prob, n_floored=prepared.n_floored,
            model_file=FILES["behaviour_model"], density_calibration=prepared.density_calibration,
            by_action=by_action, propensity_refits=config.behaviour.propensity_refits if by_action else 0,
            **_cache_fields(prepared),
        ),
        support=support_summary(flags, config.support_threshold), support_bounds=bounds,
        bootstrap=BootstrapInfo(n_resamples=config.n_bootstrap, seed=config.seed,
                                confidence=config.confidence,
                                fqe_refits=fqe_refits(config, choice.method, refit_sd),
                                fqe_note=fqe_note(config, choice) if needs_q(config) else "",
                                fqe_method=choice.method if needs_q(config) else ""),
        fqe_support=support,
        warnings=warnings, files=dict(FILES), config=config.model_dump(mode="json"),
    )
    return OpeEvaluation(
        report=report, support_flags=flags, behaviour_model=model,
        trajectory_weights={t: w.trajectory for t, w in weights.items()}, logged_actions=actions,
        recommended=prepared.recommended, action_grid=list(info.action_grid), calibration=calibration,
        density_calibration=prepared.density_calibration,
        inputs={f"trajectories/{MANIFEST_NAME}": trajectories.manifest_sha256},
    )
