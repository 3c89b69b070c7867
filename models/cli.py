"""Typer commands of the models layer: `train`, `evaluate`, `register`, `promote`."""

from __future__ import annotations

import typer

from . import ope_cli, train_cli
from .tracking import cli as tracking_cli


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the root app."""
    train_cli.register(app)  # train
    ope_cli.register(app)  # evaluate
    tracking_cli.register(app)  # register, promote
