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
    from dosewise.data_schemas.out_paths import check_out_dir

    from .simulators.icu_sepsis_episodes import write_icu_sepsis_episodes

    check_out_dir(out)
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


@synth_app.command("icu")
def synth_icu(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Output folder: hosp/, icu/, truth/ and manifest.json.")],
    stays: Annotated[int, typer.Option(help="Number of ICU stays (10 to 100,000+).", min=1)] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).", min=0)] = 0,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv.gz (as MIMIC-IV ships), csv or parquet.")
    ] = None,
    config: Annotated[str, typer.Option(help="Config name or TOML path.")] = "synthetic_icu",
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config field: key=value.")
    ] = None,
) -> None:
    """MIMIC-IV-shaped raw tables with planted Sepsis-3 cases, streamed to disk in bounded memory."""
    from dosewise.data_schemas import load_config
    from dosewise.data_schemas.out_paths import check_out_dir

    from . import config_folder
    from .simulators.synthetic_icu import write_synthetic_icu
    from .simulators.synthetic_icu_config import SyntheticIcuConfig

    state = cli_state(ctx)
    check_out_dir(out)
    settings = load_config(config, SyntheticIcuConfig, overrides or [], search=[config_folder()])
    manifest = write_synthetic_icu(out, stays, seed=seed, show_progress=not state.quiet,
                                   config=settings, file_format=file_format)
    extra = manifest.extra
    seconds = extra["generate_seconds"] + extra["write_seconds"]
    print_summary(
        "Synthetic MIMIC-IV",
        [("folder", out), ("format", extra["file_format"]), ("ICU stays", stays),
         ("planted Sepsis-3 stays", extra["planted"]["planted_sepsis"]),
         *((f"{name} rows", f"{rows:,}") for name, rows in extra["rows"].items()),
         ("dirt rows planted", sum(extra["dirt"].values())),
         ("rows/s written", f"{sum(extra['rows'].values()) / max(seconds, 1e-9):,.0f}"),
         ("seconds", f"{seconds:.1f}")],
        quiet=state.quiet,
    )


@synth_app.command("oncology")
def synth_oncology(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Output folder: the records, truth/ and manifest.json.")],
    patients: Annotated[int, typer.Option(help="Number of patients.", min=1)] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same patients and events).", min=0)] = 0,
    fmt: Annotated[
        str, typer.Option("--format", help="registry (one flat table) or omop (CDM v5.4).")
    ] = "registry",
    file_format: Annotated[str, typer.Option("--file-format", help="csv.gz, csv or parquet.")] = "csv.gz",
    model: Annotated[
        str, typer.Option(help="friberg_claret (docetaxel cycles) or zhao2009 (Zhao, Kosorok & Zeng 2009).")
    ] = "friberg_claret",
) -> None:
    """Oncology records from published models (Friberg 2002, Claret 2009) with known policy values."""
    from .simulators.oncology_writer import write_synthetic_oncology

    manifest = write_synthetic_oncology(
        out, patients, seed=seed, fmt=fmt, file_format=file_format, model=model
    )
    extra = manifest.extra
    print_summary(
        "Synthetic oncology records",
        [("folder", out), ("model", model),
         ("format", "trajectories folder" if model == "zhao2009" else f"{fmt} ({file_format})"),
         ("patients", patients),
         ("cycles", extra["n_cycles"]), ("deaths by the horizon", extra["deaths_by_horizon"]),
         ("dirt rows planted", sum(extra["dirt_planted"].values())),
         ("seconds", f"{sum(s.seconds for s in manifest.stages):.1f}")],
        quiet=cli_state(ctx).quiet,
    )


from . import etl_commands  # noqa: E402

etl_app.command("sepsis")(etl_commands.etl_sepsis)
etl_app.command("chemo")(etl_commands.etl_chemo)
etl_app.command("check-sources")(etl_commands.etl_check_sources)
etl_app.command("concepts")(etl_commands.etl_concepts)


def register(app: typer.Typer) -> None:
    """Add this layer's command groups to the root app."""
    if etl_app.registered_commands:
        app.add_typer(etl_app, name="etl")
    if synth_app.registered_commands:
        app.add_typer(synth_app, name="synth")
