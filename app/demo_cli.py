"""`dosewise demo`: everything built so far, end to end: `dosewise run --config pipeline_demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dosewise.data_schemas.console import cli_state, print_table
from dosewise.data_schemas.out_paths import check_out_dir


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the root app."""

    @app.command("demo")
    def demo(
        ctx: typer.Context,
        out: Annotated[Path, typer.Option(help="Folder for every demo output.")] = Path(
            "dosewise_out/demo"
        ),
    ) -> None:
        """Run the whole job on bundled synthetic data: synth -> ETL -> train -> OPE -> registry.

        The same as `dosewise run --config pipeline_demo --out OUT` (resumable: a second call skips
        the finished stages), with the demo's own MLflow store in OUT."""
        from .demo import run_demo

        state = cli_state(ctx)
        check_out_dir(out)
        result = run_demo(out, quiet=state.quiet)
        if not state.quiet:
            from .review_cli import review_command_line

            print_table(f"dosewise demo -> {result.out}", ["step", "seconds", "result"], result.rows)
            typer.echo(f"Log: {result.log_path}")
            typer.echo(f"Review the recommendations: {review_command_line(result.out)}")
