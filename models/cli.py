"""Typer commands of the models layer: `train`, `evaluate`, `register`, `promote`."""

from __future__ import annotations

import typer

from .tracking import cli as tracking_cli


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the root app."""
    tracking_cli.register(app)  # register, promote
