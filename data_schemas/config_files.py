"""Configs: named config or path -> TOML -> `--set dotted.key=value` overrides -> pydantic.

Overrides are applied to the raw dict *before* validation, so an error names the same dotted
key the user typed. Error messages follow scikit-learn's wording: what is allowed, what was given.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


class StrictConfig(BaseModel):
    """Base for every Dosewise config: unknown keys are errors, values are frozen, floats are finite.

    `nan` or `inf` in a float field is an error (`--set reward.c0=nan` would otherwise switch the
    shaping off while the manifest says it is on); a field where `inf` means "no limit" must say so
    with `Field(allow_inf_nan=True)`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `dotted.key=value` and parse the value as a TOML literal (bare words stay strings).

    >>> parse_override("binning.bin_hours=4")
    (['binning', 'bin_hours'], 4)
    >>> parse_override("algorithm.name=discrete_cql")
    (['algorithm', 'name'], 'discrete_cql')
    >>> parse_override("actions.quantiles=[0.25, 0.5]")
    (['actions', 'quantiles'], [0.25, 0.5])
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"`--set {text}` is not of the form dotted.key=value.",
            "Write it as, for example, --set binning.bin_hours=4.",
        )
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of `data` with each `--set` override applied in order (later wins)."""
    result: dict[str, Any] = _deep_copy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    f"`{'.'.join(path)}` cannot be set: `{part}` is a value, not a section.",
                    "Check the key against `dosewise config show NAME`.",
                )
            node = child
        node[path[-1]] = value
    return result


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def shipped_configs(search: Sequence[Traversable]) -> dict[str, Traversable]:
    """Named configs (`*.toml`) found in the given package folders, by stem."""
    found: dict[str, Traversable] = {}
    for folder in search:
        for entry in folder.iterdir():
            if entry.name.endswith(".toml"):
                found.setdefault(entry.name[: -len(".toml")], entry)
    return dict(sorted(found.items()))


def read_config_source(source: str | Path, search: Sequence[Traversable]) -> dict[str, Any]:
    """Read a config given as a path to a TOML file or as the name of a shipped config."""
    path = Path(source)
    shipped = shipped_configs(search)
    text: str
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(
                f"Config file {path} does not exist.",
                f"Pass a TOML file or one of the shipped configs: {', '.join(shipped)}.",
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"Config file {path} must be UTF-8 text (TOML). Got bytes that are not text at byte "
                f"{exc.start}.",
                "Pass the TOML config itself, not a binary or compressed file "
                "(`dosewise config show NAME` prints a starting point).",
            ) from None
        label = str(path)
    elif str(source) in shipped:
        text = shipped[str(source)].read_text(encoding="utf-8")
        label = f"shipped config `{source}`"
    else:
        raise ConfigError(
            f"No config named `{source}`.",
            f"Pass a path to a TOML file or one of the shipped configs: {', '.join(shipped)}.",
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label} is not valid TOML: {exc}.", "Fix the syntax and retry.") from exc


def validate_config(model_cls: type[ModelT], data: Mapping[str, Any]) -> ModelT:
    """Validate `data` against `model_cls`, turning pydantic errors into one `ConfigError`."""
    try:
        return model_cls.model_validate(dict(data))
    except ValidationError as exc:
        lines = [describe_error(err, data) for err in exc.errors()]
        raise ConfigError(
            " ".join(lines),
            "Fix the config file or the --set value; `dosewise config show NAME` prints a valid one.",
        ) from exc


def setting_key(loc: Sequence[Any], data: Mapping[str, Any] | None = None) -> str:
    """The dotted key a user wrote for a pydantic error location.

    Pydantic puts a discriminated union's tag into the location (`algorithm.pessimistic_mbp.
    min_count` for `[algorithm] name = "pessimistic_mbp"`); a part that is not a key of `data` there
    but is that table's `name` is such a tag and is dropped, so the error names `algorithm.min_count`.
    """
    parts: list[str] = []
    node: Any = data
    for part in loc:
        if isinstance(node, Mapping) and part not in node and node.get("name") == part:
            continue
        parts.append(str(part))
        node = node.get(part) if isinstance(node, Mapping) else None
    return ".".join(parts) or "<root>"


def describe_error(err: Mapping[str, Any], data: Mapping[str, Any] | None = None) -> str:
    """One pydantic error in scikit-learn's words: "`key` must be <allowed>. Got <value>."."""
    key = setting_key(err.get("loc", ()), data)
    given = err.get("input")
    kind = str(err.get("type", ""))
    if kind == "extra_forbidden":
        return f"`{key}` is not a known setting. Got {given!r}."
    if kind == "missing":
        return f"`{key}` is required but was not given."
    message = str(err.get("msg", "is invalid"))
    for prefix in ("Input should be ", "Value error, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
            break
    if kind.endswith(("_type", "_parsing")) or "than" in kind or kind in ("literal_error", "finite_number"):
        return f"`{key}` must be {message}. Got {given!r}."
    return f"`{key}` is invalid: {message}. Got {given!r}."


def load_config(
    source: str | Path,
    model_cls: type[ModelT],
    overrides: Iterable[str] = (),
    search: Sequence[Traversable] = (),
) -> ModelT:
    """Load a named or file config, apply `--set` overrides, and validate it.

    Args:
        source: a shipped config name (searched in `search`) or a path to a TOML file.
        model_cls: the pydantic model (a `StrictConfig`) that validates it.
        overrides: `dotted.key=value` strings, applied in order before validation.
        search: package folders holding shipped `*.toml` configs.
    """
    data = read_config_source(source, search)
    return validate_config(model_cls, apply_overrides(data, overrides))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"Cannot write {value!r} as TOML.", "Use numbers, strings, lists or tables.")


def dump_toml(data: Mapping[str, Any], _prefix: str = "") -> str:
    """Write a config dict as TOML (scalars first, then one `[section]` per nested table).

    >>> print(dump_toml({"seed": 0, "binning": {"bin_hours": 4}}), end="")
    seed = 0
    <BLANKLINE>
    [binning]
    bin_hours = 4
    """
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items()
             if v is not None and not isinstance(v, Mapping)]
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in data.items():
        if isinstance(value, Mapping):
            name = f"{_prefix}{key}"
            body = dump_toml(value, f"{name}.")
            text += f"\n[{name}]\n{body}"
    return text
