"""Validated, atomic IO: outputs appear whole or not at all.

Writers go to a temp file in the destination folder, fsync it, then `os.replace` it into place,
so a crash never leaves a half-written file under the final name. A folder is complete only
once its `manifest.json` exists, and the manifest is always written last; whole folders are
staged and swapped in by `folders.staged_output`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

from .errors import BadInputError, IncompleteOutput

MANIFEST_NAME = "manifest.json"


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success fsync it and rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def fsync_dir(folder: Path) -> None:
    """Flush the directory entry so the rename itself survives a power cut."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write a file atomically by calling `write(handle)` on a temp file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
    return Path(path)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write a text file atomically (UTF-8)."""
    return write_bytes_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def write_json_atomic(path: Path, payload: Any) -> Path:
    """Write JSON atomically with sorted keys, so equal payloads give equal bytes."""
    text = json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
    return write_text_atomic(path, text)


def write_table_atomic(frame: pd.DataFrame, path: Path) -> Path:
    """Write a parquet file atomically; rows keep their order and the index is dropped.

    Written without pandas metadata timestamps so equal frames give byte-identical files.
    """
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")
    return Path(path)


@contextlib.contextmanager
def parquet_appender(path: Path) -> Iterator[Callable[[pd.DataFrame], None]]:
    """Write a parquet file frame by frame (row groups), atomically: yields `append(frame)`.

    The file gets the first frame's schema (later frames are cast to it) and appears under its
    name only when the block ends without error; the rows read back are the frames concatenated,
    as `write_table_atomic` of their concatenation would write them. At least one frame must be
    appended.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        writers: list[tuple[pq.ParquetWriter, pa.Schema]] = []

        def append(frame: pd.DataFrame) -> None:
            schema = writers[0][1] if writers else None
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            if not writers:
                writers.append((pq.ParquetWriter(tmp, table.schema, compression="zstd"), table.schema))
            writers[0][0].write_table(table)

        try:
            yield append
        finally:
            for writer, _ in writers:
                writer.close()
        if not writers:
            raise ValueError(f"must append at least one frame to {path}. Got none")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks (works for multi-GB raw tables)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def require_complete(folder: Path) -> Path:
    """Return the manifest path of an output folder, or say that the folder is incomplete."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError(
            f"Folder {folder} does not exist.",
            "Pass the --out folder of a finished `dosewise etl` or `dosewise synth` run.",
        )
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        raise IncompleteOutput(
            f"{folder} has no {MANIFEST_NAME}, so the run that wrote it did not finish.",
            "Re-run the command that produces this folder; its manifest is written last.",
        )
    return manifest


def read_parquet_checked(path: Path) -> pd.DataFrame:
    """Read a parquet file, turning a missing or corrupt file into a clear error."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"File {path} does not exist.", "Check the path or re-run its producer.")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for bad files
        raise BadInputError(
            f"Could not read {path} as parquet: {exc}.",
            "The file is corrupt or not parquet; re-run the command that wrote it.",
        ) from exc
