"""`dosewise evaluate`: off-policy evaluation of a saved policy on a trajectories split.

The body stays a thin call to `evaluate_policy`, so the tracking layer can wrap it; torch and
d3rlpy are imported only when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dosewise.data_schemas import load_config
from dosewise.data_schemas.console import cli_state, print_summary, print_table
from dosewise.data_schemas.out_paths import check_out_dir


def print_estimates(report: Any) -> None:
    """The estimates table: value, interval, 95 % lower bound, ESS and, next to each number whose
    interval cannot be trusted, why (`OpeReport.reliability`)."""
    rows = [
        (e.target, e.estimator, f"{e.value:.4f}", f"[{e.ci_low:.4f}, {e.ci_high:.4f}]",
         f"{e.lower_bound_95:.4f}",
         "-" if e.ess is None else f"{e.ess:.1f} ({100 * (e.ess_share or 0):.1f} %)",
         report.reliability(e) or "ok")
        for e in report.estimates
    ]
    level = round(100 * report.bootstrap.confidence)
    print_table(f"Off-policy estimates ({report.split} split, {report.n_episodes} episodes)",
                ["target", "estimator", "value", f"{level} % CI", "95 % lower bound", "ESS", "reliability"],
                rows)


def print_bounds(report: Any) -> None:
    """The support bounds: the range of values the data allow for each evaluated policy."""
    if not report.support_bounds:
        return
    level = round(100 * report.bootstrap.confidence)
    rows = [(b.target, f"[{b.value_low:.4f}, {b.value_high:.4f}]", f"[{b.ci_low:.4f}, {b.ci_high:.4f}]",
             f"{100 * b.share_leaving_support:.1f} %",
             f"[{b.return_low:g}, {b.return_high:g}] ({b.return_range_source})")
            for b in report.support_bounds]
    print_table(f"Range of values the data allow (actions with clinicians' probability < "
                f"{report.support.threshold:g} are out of support)",
                ["target", "bounds", f"{level} % CI", "episodes leaving support", "returns possible"], rows)


def print_propensities(report: Any) -> None:
    """Per action: the known behaviour probability (a trial's randomisation) beside the fitted model's."""
    info = report.behaviour
    if not info.by_action or (info.propensity_refits == 0 and all(a.known is None for a in info.by_action)):
        return
    level = round(100 * report.bootstrap.confidence)
    rows = [(str(a.action) if a.label is None else f"{a.action} ({a.label})", a.n_logged,
             "-" if a.known is None else f"{a.known:.4f}", f"{a.fitted:.4f}",
             "-" if a.ci_low is None else f"[{a.ci_low:.4f}, {a.ci_high:.4f}]")
            for a in info.by_action]
    print_table(f"Behaviour probability by action ({report.split} split; interval: {info.propensity_refits} "
                "refits)", ["action", "steps logged", "known", "fitted (mean)", f"{level} % CI"], rows)


def _fqe_summary(report: Any) -> str:
    """"tabular FQE, 200 refits" / "neural FQE, one fit (no refits)" / "-" (FQE not fitted)."""
    boot = report.bootstrap
    if not boot.fqe_note:
        return "-"
    method = f"{boot.fqe_method} FQE, " if boot.fqe_method else ""
    return f"{method}{boot.fqe_refits} refits" if boot.fqe_refits else f"{method}one fit (no refits)"


def register(app: typer.Typer) -> None:
    """Add `evaluate` to the root app."""

    @app.command("evaluate")
    def evaluate(
        ctx: typer.Context,
        trajectories: Annotated[Path, typer.Option("--trajectories", help="A trajectories folder.")],
        policy: Annotated[str, typer.Option(
            "--policy", help="A saved policy folder, a registered model models:/NAME@ALIAS, or a fixed "
            "reference policy constant:ACTION (constant:K = always action/arm K; constant:1.0 or "
            "constant:COLUMN=X = always this dose).")],
        config: Annotated[str, typer.Option("--config", help="Shipped OPE config name or TOML path.")] = (
            "ope_default"),
        split: Annotated[str, typer.Option("--split", help="train, validation or test.")] = "test",
        out: Annotated[Path | None, typer.Option(
            "--out", help="Output folder (default: <policy folder>/ope_<split>).")] = None,
        overrides: Annotated[list[str] | None, typer.Option(
            "--set", help="Override a config key: dotted.key=value.")] = None,
        track: Annotated[bool, typer.Option(
            "--track/--no-track", help="Log ope/ metrics, the report and plots to the policy's MLflow run."
        )] = True,
        as_json: Annotated[bool, typer.Option(
            "--json", help="Print the report as JSON on stdout instead of tables (also with --quiet)."
        )] = False,
    ) -> None:
        """Estimate the policy's and the clinicians' value with IS/WIS/PDIS/PDWIS/DR/WDR/FQE, bootstrap
        intervals, ESS and support; write ope_report.json, figures and support flags."""
        from . import config_folder
        from .ope.config import OpeConfig
        from .tracking.session import default_ope_dir, evaluate_tracked

        state = cli_state(ctx)
        ope_config = load_config(config, OpeConfig, overrides or [], search=[config_folder()])
        out_dir = check_out_dir(out or default_ope_dir(policy, split), {"--trajectories": trajectories})
        tracked = evaluate_tracked(trajectories, policy, ope_config, split=split, out_dir=out_dir,
                                   tracking_uri=state.tracking_uri, track=track,
                                   show_progress=not state.quiet)
        report = tracked.report
        if as_json:  # the answer: printed even with --quiet, which silences only progress and tables
            typer.echo(report.model_dump_json(indent=2))
            return
        if state.quiet:
            return
        print_estimates(report)
        print_bounds(report)
        print_propensities(report)
        for warning in report.warnings:
            typer.secho(f"Warning: {warning}", fg="yellow", err=True)
        print_summary("dosewise evaluate", [
            ("policy", f"{report.policy_name} (epsilon {report.epsilon:g})"),
            ("behaviour probabilities", report.behaviour.source),
            ("behaviour model held-out log-loss / ECE",
             f"{report.behaviour.heldout_log_loss:.3f} / {report.behaviour.heldout_ece:.3f}"),
            ("out-of-support steps", f"{100 * report.support.share_steps_out_of_support:.1f} %"),
            ("FQE interval", _fqe_summary(report)),
            ("output folder", out_dir.resolve()),
            ("mlflow run", tracked.run_id or "- (no tracked run for this policy)"),
        ])
