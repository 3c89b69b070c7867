"""`dosewise sweep --config SWEEP.toml [--address ray://HOST:PORT|auto] [--max-concurrent N]`.

Exit codes: 0 a winner was selected, tested and registered; 2 bad input or config (an unknown
setting, an empty space, an estimator the OPE config does not compute, a Ray address that does not
answer); 1 failure; 3 done but no trial met the ESS floor (nothing registered).
"""

from __future__ import annotations

from typing import Annotated

import typer

from dosewise.data_schemas.console import cli_state, print_table

EXIT_NO_WINNER = 3


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def register(app: typer.Typer) -> None:
    """Add the `sweep` command to the root app."""

    @app.command("sweep")
    def sweep(
        ctx: typer.Context,
        config: Annotated[
            str, typer.Option(help="Sweep config: a shipped name (sweep_demo) or a TOML path.")
        ],
        set_: Annotated[
            list[str] | None, typer.Option("--set", help="Override a dotted key (repeatable).")
        ] = None,
        address: Annotated[
            str | None,
            typer.Option(help="Ray cluster: ray://HOST:PORT or auto (default: a local Ray on this machine)."),
        ] = None,
        max_concurrent: Annotated[int | None, typer.Option(min=1, help="Trials at once.")] = None,
    ) -> None:
        """Train every trial of a search space on Ray Tune; pick the winner by an OPE lower bound on
        validation; evaluate it once on test; register it. An interrupted sweep resumes."""
        from .sweep import load_sweep_config, regret, run_sweep

        state = cli_state(ctx)
        sweep_config = load_sweep_config(config, list(set_ or []))
        outcome = run_sweep(
            sweep_config,
            address=address,
            max_concurrent=max_concurrent,
            tracking_uri=state.tracking_uri,
            quiet=state.quiet,
        )
        winner = outcome.winner
        if not state.quiet:
            rows = [
                (
                    str(r.index),
                    r.label(),
                    r.status,
                    _fmt(r.estimate),
                    _fmt(r.score),
                    _fmt(r.ess, 0),
                    _fmt(r.exact, 4),
                    "<- selected" if winner is r else (r.error or ""),
                )
                for r in outcome.rows
            ]
            print_table(
                f"dosewise sweep -> {outcome.out} ({sweep_config.selection.estimator} on validation)",
                ["trial", "settings", "status", "estimate", "lower bound", "ESS", "exact", ""],
                rows,
            )
        if winner is None:
            typer.echo(
                f"No trial met the ESS floor ({sweep_config.selection.min_ess:g}); nothing registered.",
                err=True,
            )
            raise typer.Exit(code=EXIT_NO_WINNER)
        loss = regret(outcome.rows, winner)
        typer.echo(
            f"selected trial {winner.index} ({winner.label()}); {outcome.test_summary}; "
            f"{outcome.registered}"
            + (f"; exact {winner.exact:.4f}, regret {loss:.4f}" if loss is not None and winner.exact else "")
            + (
                f"; rank correlation {outcome.rank_correlation:.2f}"
                if outcome.rank_correlation is not None
                else ""
            )
        )
