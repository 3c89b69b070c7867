"""Errors that say what is wrong and what to do about it.

Every user-facing failure in Dosewise raises a `DosewiseError` subclass. The CLI prints the
message and the hint on one line each and exits with `exit_code` (2 for bad input or config,
1 for anything else); `--debug` adds the traceback.
"""

from __future__ import annotations


class DosewiseError(Exception):
    """Base error: `message` says what is wrong, `hint` says what to do next."""

    exit_code: int = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class BadInputError(DosewiseError):
    """Input the user can fix (files, arguments, data): exit code 2."""

    exit_code = 2


class ConfigError(BadInputError):
    """A config name, file, key, type or value that is not allowed."""


class SchemaViolation(BadInputError):
    """A table that breaks its schema at a layer boundary."""


class MissingSourceTable(BadInputError):
    """A raw source table (or column) that a requested step needs is not there."""


class IncompleteOutput(BadInputError):
    """An output folder without its manifest: the run that wrote it did not finish."""


class DeviceUnavailable(BadInputError):
    """A compute device was asked for that this machine does not have."""


class TrackingError(DosewiseError):
    """The MLflow tracking server or registry failed or could not be reached."""
