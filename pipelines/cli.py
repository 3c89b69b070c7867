"""Typer sub-commands of the pipelines layer: `etl ...` and `synth ...`."""

from __future__ import annotations

import typer

etl_app = typer.Typer(help="Raw clinical records -> validated trajectories.", no_args_is_help=True)
synth_app = typer.Typer(help="Synthetic and simulated data with known truths.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this layer's command groups to the root app."""
    if etl_app.registered_commands:
        app.add_typer(etl_app, name="etl")
    if synth_app.registered_commands:
        app.add_typer(synth_app, name="synth")
