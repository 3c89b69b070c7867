"""`--out` rules shared by every command that writes a folder: refuse before any work starts.

An output folder must be a folder (or creatable as one), must be writable, and must not be, or lie
inside, an input folder: outputs written into the raw data would mix with it and be read back as
input by the next run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import BadInputError


def _first_existing(path: Path) -> Path:
    """`path` or its nearest existing ancestor."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def check_out_dir(out: Path, inputs: dict[str, Path] | None = None, option: str = "--out") -> Path:
    """Return `out` resolved if it can be written, or raise `BadInputError` (exit 2) saying why not.

    Nothing is created here: the writer creates `out` (and its parents) once its inputs check out.

    `inputs` maps an option name (e.g. `--source`) to a folder the command reads: `out` may be
    neither that folder nor inside it."""
    resolved = Path(os.path.abspath(Path(out).expanduser()))
    for name, folder in (inputs or {}).items():
        source = Path(os.path.abspath(Path(folder).expanduser())).resolve()
        target = resolved.resolve()
        if target == source or source in target.parents:
            raise BadInputError(
                f"{option} {out} must be outside {name} {folder}. Got a folder "
                f"{'equal to' if target == source else 'inside'} it.",
                f"Write outputs elsewhere, e.g. {option} {source.parent / (source.name + '_out')}; "
                "outputs inside the raw data would be read back as input.",
            )
    existing = _first_existing(resolved)
    if not existing.is_dir():
        where = "is a file" if existing == resolved else f"lies below the regular file {existing}"
        raise BadInputError(f"{option} {out} must be a folder. Got a path that {where}.",
                            "Pass a folder path whose parents are folders (it is created when missing).")
    try:  # probe the nearest existing folder: a refused command must not leave `out` behind
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise BadInputError(
            f"{option} {out} must be a writable folder. Got: {exc.strerror or exc} (under {existing}).",
            f"Pass a folder on a writable file system where you may create files, e.g. {option} ./out.",
        ) from None
    return resolved
