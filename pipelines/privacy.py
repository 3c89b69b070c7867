"""Pseudonymised identifiers: a salted SHA-256 of the source id, so outputs carry no raw MIMIC ids."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

from dosewise.data_schemas import ConfigError


def resolve_salt(salt: str, env_var: str) -> str:
    """The salt from the config, else from the environment; an error if neither is set."""
    value = salt or os.environ.get(env_var, "")
    if not value:
        raise ConfigError(
            f"Pseudonymised ids need a salt, but `output.id_salt` is empty and ${env_var} is not set.",
            f"export {env_var}=<secret>, or pass --set output.id_salt=<secret> "
            "(or --set output.pseudonymize_ids=false to keep raw ids).",
        )
    return value


def pseudonymize_ids(ids: Iterable[object], salt: str, prefix: str = "ep_") -> list[str]:
    """Stable pseudonyms: `prefix` + the first 16 hex digits of SHA-256(salt:id).

    >>> pseudonymize_ids([1], "s") == pseudonymize_ids([1], "s") != pseudonymize_ids([1], "t")
    True
    """
    return [prefix + hashlib.sha256(f"{salt}:{i}".encode()).hexdigest()[:16] for i in ids]
