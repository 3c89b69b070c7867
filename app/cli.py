"""The root `dosewise` command: global options, error handling, and the layers' sub-commands.

Commands stay thin: parse, load the config, call a layer's public function, print a summary.
Heavy libraries (torch, d3rlpy, mlflow, streamlit) are imported inside command bodies so that
`dosewise --help` and the ETL commands start fast.
"""

from __future__ import annotations

import sys
import traceback
from importlib.metadata import version
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from dosewise import models, pipelines
from dosewise.data_schemas import DosewiseError
from dosewise.data_schemas.console import CliState, cli_state
from dosewise.models import cli as models_cli
from dosewise.pipelines import cli as pipelines_cli

from . import config_cli, demo_cli, review_cli, run_cli, sweep_cli
from .pipeline import PipelineConfig
from .pipeline import config_folder as app_config_folder
from .sweep.config import SweepConfig

_err = Console(stderr=True)
DEBUG_NOTE = (
    "[yellow]--debug:[/] the traceback below may contain patient data (raw rows and ids from the input "
    "files); keep it within the data's access rules."
)


class DosewiseGroup(typer.core.TyperGroup):
    """Click group that turns a `DosewiseError` into one red line, its hint, and an exit code."""

    def invoke(self, ctx: typer._click.core.Context) -> Any:  # typer vendors click
        try:
            return super().invoke(ctx)
        except DosewiseError as exc:
            if cli_state(ctx).debug:
                _err.print(DEBUG_NOTE, highlight=False)
                _err.print(traceback.format_exc(), markup=False, highlight=False)
            _err.print(f"[bold red]Error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
            if exc.hint:
                _err.print(f"[yellow]Hint:[/] {escape(exc.hint)}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=exc.exit_code) from None
        except (typer.exceptions.TyperException, typer.Exit, typer.Abort):
            raise  # usage errors and exits: click prints them itself
        except Exception as exc:  # a bug or an unforeseen input: its text may quote patient rows
            if cli_state(ctx).debug:
                _err.print(DEBUG_NOTE, highlight=False)
                raise
            _err.print(f"[bold red]Error:[/] unexpected {type(exc).__name__} (details hidden: they may quote "
                       "patient data).", highlight=False)
            _err.print("[yellow]Hint:[/] re-run with --debug to see the traceback.", highlight=False)
            raise typer.Exit(code=1) from None


app = typer.Typer(
    cls=DosewiseGroup,
    name="dosewise",
    help="Learn and review treatment-dosing policies from clinical records with offline RL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from dosewise.data_schemas import current_code_version

        code = current_code_version()
        sha = f" (git {code.git_sha[:12]}{', dirty' if code.dirty else ''})" if code.git_sha else ""
        typer.echo(f"dosewise {version('dosewise')}{sha}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars or chatter (batch runs); a command's "
                           "answer (check-sources, config show/list, --json output) still prints.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            envvar="MLFLOW_TRACKING_URI",
            help="MLflow tracking URI (default: a local sqlite store in the output folder).",
        ),
    ] = None,
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Dosewise: ETL -> offline RL -> off-policy evaluation -> registry -> clinician review."""
    ctx.obj = CliState(quiet=quiet, debug=debug, tracking_uri=tracking_uri)


pipelines_cli.register(app)
models_cli.register(app)
config_cli.register(
    app,
    folders=[pipelines.config_folder(), models.config_folder(), app_config_folder()],
    kinds={**pipelines.config_kinds(), **models.config_kinds(), "pipeline": PipelineConfig,
           "sweep": SweepConfig},
)
demo_cli.register(app)
run_cli.register(app)
sweep_cli.register(app)
review_cli.register(app)


def main() -> None:
    """Console-script entry point."""
    sys.exit(app(prog_name="dosewise"))


if __name__ == "__main__":  # `python -m dosewise.app.cli`: how torchrun starts `train --ddp` ranks
    main()
