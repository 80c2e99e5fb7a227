"""Writing rows to parquet in chunks, atomically: a temp file beside the target, renamed at the end.

Memory holds one chunk; a crash or Ctrl-C leaves the previous file (or none), never half of one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from vlmrl.utils.io import atomic_path

DEFAULT_CHUNK_ROWS = 256


class ParquetChunkWriter:
    """Context manager: `add(row)` buffers, every `chunk_rows` rows become one row group.

    The file appears at `path` only when the block exits without error.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: pa.Schema,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        compression: str | None = "zstd",
    ):
        self.path = Path(path)
        self.compression = compression
        self.schema = schema
        self.chunk_rows = max(1, chunk_rows)
        self.rows_written = 0
        self._buffer: list[dict[str, Any]] = []
        self._stack = contextlib.ExitStack()
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> ParquetChunkWriter:
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._writer = pq.ParquetWriter(tmp, self.schema, compression=self.compression or "none")
        return self

    def add(self, row: dict[str, Any]) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= self.chunk_rows:
            self.flush()

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    def write_table(self, table: pa.Table) -> None:
        """Append whole row groups of at most `chunk_rows` rows (after any buffered rows)."""
        self.flush()
        for batch in table.to_batches(max_chunksize=self.chunk_rows):
            self._writer.write_batch(batch)
            self.rows_written += batch.num_rows

    def flush(self) -> None:
        if self._buffer and self._writer is not None:
            table = pa.Table.from_pylist(self._buffer, schema=self.schema)
            self._writer.write_table(table)
            self.rows_written += len(self._buffer)
            self._buffer = []

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            if self._writer is not None:
                self._writer.close()
            # atomic_path renames on success and deletes the temp file on error.
            self._stack.__exit__(exc_type, exc, tb)


def write_rows_parquet(
    rows: Iterable[dict[str, Any]],
    path: str | os.PathLike[str],
    schema: pa.Schema,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> int:
    """Stream `rows` into `path` atomically in row groups of `chunk_rows`; returns the row count."""
    with ParquetChunkWriter(path, schema, chunk_rows) as writer:
        writer.extend(rows)
    return writer.rows_written
