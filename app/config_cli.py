"""`dosewise config show NAME` and `dosewise config validate FILE`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.abc import Traversable
from pathlib import Path
from typing import Annotated

import typer

from dosewise.data_schemas import (
    ConfigError,
    StrictConfig,
    read_config_source,
    shipped_configs,
    validate_config,
)
from dosewise.data_schemas.config_files import dump_toml


def _model_for(data: Mapping[str, object], kinds: Mapping[str, type[StrictConfig]], label: str
               ) -> type[StrictConfig]:
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in kinds:
        raise ConfigError(
            f"{label}: `kind` must be one of {sorted(kinds)}. Got {kind!r}.",
            "Every Dosewise config starts with a `kind = \"...\"` line naming what it configures.",
        )
    return kinds[kind]


def register(
    app: typer.Typer,
    folders: Sequence[Traversable],
    kinds: Mapping[str, type[StrictConfig]],
) -> None:
    """Add the `config` sub-command group to the root app."""
    config_app = typer.Typer(help="Show shipped configs and validate config files.",
                             no_args_is_help=True)

    @config_app.command("show")
    def show(
        name: Annotated[str, typer.Argument(help="A shipped config name (or a TOML path).")],
    ) -> None:
        """Print a config fully resolved (every default filled in) as TOML."""
        data = read_config_source(name, folders)
        config = validate_config(_model_for(data, kinds, name), data)
        typer.echo(dump_toml(config.model_dump(mode="json")), nl=False)

    @config_app.command("validate")
    def validate(
        file: Annotated[Path, typer.Argument(help="A TOML config file.")],
    ) -> None:
        """Check a config file; exit 2 naming each wrong key, what is allowed and what was given."""
        data = read_config_source(file, folders)
        model = _model_for(data, kinds, str(file))
        validate_config(model, data)
        typer.echo(f"{file}: valid {model.__name__}.")

    @config_app.command("list")
    def list_configs() -> None:
        """List the shipped configs."""
        for name in shipped_configs(folders):
            typer.echo(name)

    app.add_typer(config_app, name="config")
