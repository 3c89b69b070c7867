"""Output folders that appear whole or not at all: write into a fresh staging folder, then swap it in.

Every Dosewise command that writes an output folder (`etl`, `synth`, `train`, `evaluate`) writes
into `.<name>.staging-<pid>-<random>` beside the destination and, once its manifest is written
there, swaps the staging folder in place of the destination in one step (Linux `renameat2` with
`RENAME_EXCHANGE`; elsewhere two renames, during which the destination is briefly absent, never
mixed). A run that fails or is killed therefore leaves the last complete run untouched, and no
reader can ever see a new `model.pt` beside an old `manifest.json`.

A destination is replaced only when it is empty or is itself a Dosewise output (it holds a
`manifest.json`); a folder holding anything else is refused, so `--out ~` never deletes a home.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import BadInputError, IncompleteOutput
from .io import MANIFEST_NAME, fsync_dir

STAGING_TAG = ".staging-"
RETIRED_TAG = ".retired-"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's live process
        return True
    return True


def _remove_leftovers(dest: Path) -> None:
    """Delete staging and retired folders of `dest` left by runs that were killed."""
    for tag in (STAGING_TAG, RETIRED_TAG):
        for path in dest.parent.glob(f".{dest.name}{tag}*"):
            pid = path.name[len(f".{dest.name}{tag}"):].split("-", 1)[0]
            if path.is_dir() and not (pid.isdigit() and _pid_alive(int(pid)) and int(pid) != os.getpid()):
                shutil.rmtree(path, ignore_errors=True)


def check_replaceable(dest: Path) -> None:
    """Refuse a destination that is a file, or a folder holding files no Dosewise run wrote."""
    if dest.exists() and not dest.is_dir():
        raise BadInputError(f"--out {dest} is a file.", "Pass a folder (it is created when missing).")
    if dest.is_dir() and not (dest / MANIFEST_NAME).is_file():
        found = sorted(p.name for p in dest.iterdir())
        if found:
            raise BadInputError(
                f"--out {dest} must be empty or an earlier Dosewise output (with a {MANIFEST_NAME}); "
                f"it holds {', '.join(found[:5])}{' ...' if len(found) > 5 else ''}.",
                "A rerun replaces its output folder whole: pass a new or empty folder.",
            )


def swap_in(staging: Path, dest: Path) -> None:
    """Put the complete `staging` folder at `dest`, replacing an earlier output in one step."""
    if not (staging / MANIFEST_NAME).is_file():
        raise IncompleteOutput(
            f"The run writing {dest} finished without a {MANIFEST_NAME}; {dest} was left unchanged.",
            "This is a bug in the command that wrote it; re-run with --debug and report it.",
        )
    if not dest.exists():
        os.rename(staging, dest)
    elif _exchange(staging, dest):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the earlier run
    else:
        retired = Path(tempfile.mkdtemp(prefix=f".{dest.name}{RETIRED_TAG}{os.getpid()}-", dir=dest.parent))
        os.rename(dest, retired / "old")
        os.rename(staging, dest)
        shutil.rmtree(retired, ignore_errors=True)
    fsync_dir(dest.parent)


@contextlib.contextmanager
def staged_output(dest: Path | str) -> Iterator[Path]:
    """Yield a fresh, empty staging folder for a run whose output goes to `dest`.

    Write every file and the manifest (last) into the yielded folder. When the block ends normally
    the staging folder replaces `dest` whole; when it raises (or the process dies), `dest` keeps
    the last complete run and the staging folder is removed (now, or by the next run).

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> with staged_output(out) as work:
    ...     _ = (work / "a.txt").write_text("1"); _ = (work / "manifest.json").write_text("{}")
    >>> sorted(p.name for p in out.iterdir())
    ['a.txt', 'manifest.json']
    """
    dest = Path(dest)
    check_replaceable(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(dest)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}{STAGING_TAG}{os.getpid()}-", dir=dest.parent))
    try:
        yield staging
        swap_in(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
