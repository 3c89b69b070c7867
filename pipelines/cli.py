"""Typer sub-commands of the pipelines layer: `etl ...` and `synth ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dosewise.data_schemas.console import cli_state, print_summary

etl_app = typer.Typer(help="Raw clinical records -> validated trajectories.", no_args_is_help=True)
synth_app = typer.Typer(help="Synthetic and simulated data with known truths.",
                        no_args_is_help=True)


@synth_app.command("icu-sepsis")
def synth_icu_sepsis(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Output trajectories folder.")],
    episodes: Annotated[int, typer.Option(help="Number of episodes to simulate.")] = 10_000,
    behaviour: Annotated[
        str, typer.Option(help="Logging policy: clinician, random or epsilon:E.")
    ] = "clinician",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Episodes of the ICU-Sepsis MDP (a ground truth: exact policy values are computable)."""
    from .simulators.icu_sepsis_episodes import write_icu_sepsis_episodes

    manifest = write_icu_sepsis_episodes(out, episodes, behaviour=behaviour, seed=seed)
    stage = manifest.stages[0]
    print_summary(
        "ICU-Sepsis episodes",
        [("folder", out), ("episodes", episodes), ("rows (decisions)", stage.rows_out),
         ("behaviour", behaviour),
         ("exact behaviour value", f"{manifest.extra['exact_behaviour_value']:.4f}"),
         ("seconds", f"{stage.seconds:.1f}")],
        quiet=cli_state(ctx).quiet,
    )


def register(app: typer.Typer) -> None:
    """Add this layer's command groups to the root app."""
    if etl_app.registered_commands:
        app.add_typer(etl_app, name="etl")
    if synth_app.registered_commands:
        app.add_typer(synth_app, name="synth")
