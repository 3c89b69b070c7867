"""`dosewise register` and `dosewise promote`: the registry commands (mlflow imported when run)."""

from __future__ import annotations

from typing import Annotated

import typer

from dosewise.data_schemas.console import cli_state, print_summary


def register(app: typer.Typer) -> None:
    """Add the registry commands to the root app."""

    @app.command("register")
    def register_command(
        ctx: typer.Context,
        run: Annotated[str, typer.Option("--run", help="Id of a `dosewise train` MLflow run.")],
        name: Annotated[str, typer.Option("--name", help="Registered model name.")] = "sepsis-dosing",
        alias: Annotated[
            str | None, typer.Option("--alias", help="Alias to point at the new version, e.g. candidate.")
        ] = None,
    ) -> None:
        """Register a run's policy as a pyfunc model version (explicit signature, pinned requirements)."""
        from dosewise.models import register_policy

        state = cli_state(ctx)
        registered = register_policy(run, name, alias=alias, tracking_uri=state.tracking_uri)
        print_summary(
            f"registered {registered.name} version {registered.version}",
            [
                ("model", registered.uri),
                ("aliases", ", ".join(registered.aliases) or "-"),
                ("run", registered.run_id),
                ("load with", f"mlflow.pyfunc.load_model('models:/{name}@{alias}')" if alias
                 else f"mlflow.pyfunc.load_model('{registered.uri}')"),
            ],
            quiet=state.quiet,
        )

    @app.command("promote")
    def promote_command(
        ctx: typer.Context,
        name: Annotated[str, typer.Option("--name", help="Registered model name.")],
        version: Annotated[str, typer.Option("--version", help="Version to promote.")],
        config: Annotated[
            str, typer.Option("--config", help="Promotion gate config: shipped name or TOML path.")
        ] = "promotion",
        overrides: Annotated[
            list[str] | None, typer.Option("--set", help="Override a config key: dotted.key=value.")
        ] = None,
    ) -> None:
        """Move `champion` to a version only if its OPE lower bound beats the clinicians (else exit 2)."""
        from dosewise.data_schemas import load_config
        from dosewise.models import PromotionConfig, config_folder, promote_policy

        state = cli_state(ctx)
        gate = load_config(config, PromotionConfig, overrides or [], search=[config_folder()])
        decision = promote_policy(name, version, gate, tracking_uri=state.tracking_uri)
        print_summary(
            f"promoted {name} version {version} to `{gate.alias}`",
            [
                (f"{decision.estimator} {decision.bound}", f"{decision.policy_bound:.4f}"),
                ("clinicians + margin", f"{decision.clinician_value:.4f} + {decision.margin:.4f}"),
                ("ESS (minimum)", f"{decision.ess:.1f} ({decision.min_ess:.1f})"),
                ("episodes leaving support (maximum)", f"{100 * (decision.leaving_support or 0.0):.1f} % "
                 f"({100 * decision.max_leaving_support:.1f} %)"),
            ],
            quiet=state.quiet,
        )
