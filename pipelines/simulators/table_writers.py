"""Streaming, atomic table writers: csv.gz / csv / parquet, appended chunk by chunk.

Each file is written under a temp name beside its destination and renamed into place only when
the writer closes without error, so a crash never leaves a half-written table under its real name.
gzip output carries no file name and a zero mtime, so equal data gives byte-identical files.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from dosewise.data_schemas import atomic_path


class TableWriter:
    """Append arrow tables to one csv(.gz) or parquet file (header written once)."""

    def __init__(self, path: Path, schema: pa.Schema, file_format: str, gzip_level: int = 1) -> None:
        self.schema = schema
        self.rows = 0
        self._parquet: pq.ParquetWriter | None = None
        self._raw: IO[bytes] | None = None
        self._out: IO[bytes] | None = None
        if file_format == "parquet":
            self._parquet = pq.ParquetWriter(path, schema, compression="zstd")
            return
        raw = open(path, "wb")  # noqa: SIM115 - closed in close()
        out: Any = (gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=gzip_level,
                                  mtime=0) if file_format == "csv.gz" else raw)
        out.write((",".join(schema.names) + "\n").encode("utf-8"))
        self._raw, self._out = raw, out
        self._options = pa_csv.WriteOptions(include_header=False, quoting_style="needed",
                                            batch_size=1 << 16)

    def write(self, table: pa.Table) -> None:
        """Append `table` (columns in this writer's schema order)."""
        table = table.select(self.schema.names).cast(self.schema)
        self.rows += table.num_rows
        if self._parquet is not None:
            self._parquet.write_table(table, row_group_size=1 << 20)
            return
        if self._out is None:  # internal invariant: csv writers have a stream
            raise RuntimeError("csv table writer has no output stream")
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(table, sink, self._options)
        self._out.write(memoryview(sink.getvalue()))

    def close(self) -> None:
        """Flush and close the file."""
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._out is not None and self._out is not self._raw:
            self._out.close()
        if self._raw is not None:
            self._raw.close()
        self._out = self._raw = None


@contextmanager
def open_table_writer(path: Path, schema: pa.Schema, file_format: str,
                      gzip_level: int = 1) -> Iterator[TableWriter]:
    """A `TableWriter` on a temp file that becomes `path` only if the block exits cleanly."""
    with atomic_path(path) as tmp:
        writer = TableWriter(tmp, schema, file_format, gzip_level)
        try:
            yield writer
        finally:
            writer.close()
