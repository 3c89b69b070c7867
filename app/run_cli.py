"""`dosewise run --config PIPELINE`: ETL -> train -> evaluate -> register -> promote from one config.

Exit codes a scheduler can tell apart: 0 done, 2 bad input or config, 1 failure, 3 done but the
promotion gate kept the policy out of `champion`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dosewise.data_schemas.console import cli_state, print_table

from .pipeline import (
    EXIT_REFUSED,
    STAGES,
    PipelineConfig,
    PipelineOutcome,
    load_pipeline_config,
    run_pipeline,
)

_STAGES = ", ".join(STAGES)


def register(app: typer.Typer) -> None:
    """Add the `run` command to the root app."""

    @app.command("run")
    def run(
        ctx: typer.Context,
        config: Annotated[str, typer.Option(help="Pipeline config: a shipped name (pipeline_demo, "
                                            "pipeline_sepsis_mimic4) or a TOML path.")],
        set_: Annotated[list[str] | None, typer.Option("--set", help="Override a dotted key (repeatable), "
                                                       "e.g. train.settings.n_steps=500.")] = None,
        from_stage: Annotated[
            str | None, typer.Option("--from", help=f"Rerun from this stage on ({_STAGES}).")
        ] = None,
        only: Annotated[str | None, typer.Option("--only", help="Run only this stage (its inputs must be "
                                                 "finished).")] = None,
        out: Annotated[Path | None, typer.Option(help="Run folder (default: the config's `out`).")] = None,
    ) -> None:
        """Run a whole pipeline; finished stages with the same config and inputs are skipped."""
        state = cli_state(ctx)
        pipeline = load_pipeline_config(config, list(set_ or []))
        if out is not None:
            pipeline = pipeline.model_copy(update={"out": str(out)})
        outcome = execute(pipeline, from_stage, only, state.tracking_uri, state.quiet)
        if outcome.exit_code == EXIT_REFUSED:
            raise typer.Exit(code=EXIT_REFUSED)


def execute(pipeline: PipelineConfig, from_stage: str | None, only: str | None, tracking_uri: str | None,
            quiet: bool) -> PipelineOutcome:
    """Run the pipeline with one progress line per stage, then print the stage table (unless quiet)."""
    console = Console(stderr=True, quiet=quiet)

    def announce(number: int, total: int, title: str) -> None:
        console.print(f"[bold]{number}/{total}[/] {title} ...", highlight=False)

    outcome = run_pipeline(pipeline, from_stage=from_stage, only=only,
                           tracking_uri=tracking_uri, quiet=quiet, on_stage=announce)
    if not quiet:
        print_table(f"dosewise run -> {outcome.out}", ["stage", "seconds", "result"], outcome.rows)
        typer.echo(f"Log: {outcome.log_path}; MLflow parent run {outcome.parent_run_id}")
    if outcome.refused:
        typer.echo("Done, but the promotion gate refused the policy (exit 3).", err=True)
    return outcome
