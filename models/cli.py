"""Typer commands of the models layer: `train`, `evaluate`, `register`, `promote`."""

from __future__ import annotations

import typer

from . import train_cli
from .tracking import cli as tracking_cli


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the root app."""
    train_cli.register(app)  # train
    tracking_cli.register(app)  # register, promote
