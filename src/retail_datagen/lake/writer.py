"""The one Parquet writer of the project (sharding.md §5).

Every Parquet file the project writes, lake table files, lake state files, lake dimensions and
the monthly export, goes through :class:`ParquetFile` (:func:`write_parquet` for a whole table)
with the options in :data:`PARQUET_OPTIONS`. The options are constants, so the same library
versions write the same bytes from any process, executor or machine. A file is written under a
temporary name in its own folder and renamed over its final name, so a reader (or a killed run)
never sees a partial file under a final name.
"""

from __future__ import annotations

import os
import secrets
from contextlib import suppress
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

#: Writer options of every file. ``version`` 2.6 keeps ``timestamp[us]`` as microseconds
#: without a time zone (TIMESTAMP_NTZ in Spark); zstd at a fixed level and a fixed row-group
#: size make the bytes a function of the rows and the library versions only. Without
#: dictionary pages, zstd level 1 wrote a starter unit-day's tables in about half the CPU time
#: of the defaults with dictionaries at level 3, and 8% smaller (ids and amounts are mostly
#: distinct; zstd catches the repeated strings).
PARQUET_OPTIONS: dict[str, Any] = {
    "version": "2.6",
    "compression": "zstd",
    "compression_level": 1,
    "use_dictionary": False,
    "write_statistics": True,
    "data_page_version": "1.0",
}
#: Rows per row group (each lake file is one unit-day of one table, usually one group).
ROW_GROUP_ROWS = 1_000_000

#: Temporary files are ``.<final name>.<token>.tmp``: hidden from Hive-style readers (a leading
#: dot) and never matched by ``*.parquet``.
TEMPORARY_SUFFIX = ".tmp"


def temporary_path(path: Path) -> Path:
    """A fresh temporary name for ``path`` in the same folder (so the rename is atomic).

    The name is unique per call: two writers of the same file (a retried task that overlaps
    its first attempt) never write into each other's temporary file.
    """
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")


def is_temporary(path: Path) -> bool:
    """Tell whether ``path`` is a temporary file left by :func:`temporary_path`."""
    return path.name.startswith(".") and path.name.endswith(TEMPORARY_SUFFIX)


def write_parquet(table: pa.Table, path: Path, schema: pa.Schema | None = None) -> Path:
    """Write ``table`` (cast to ``schema`` when given) to ``path`` atomically.

    The folder is created; the file is written under a temporary name beside ``path`` and
    renamed over it; on any error the temporary file is removed and ``path`` is unchanged.
    A table without rows still makes a file (state tables may be empty).

    Returns:
        ``path``.
    """
    file = ParquetFile(path, schema if schema is not None else table.schema)
    try:
        file.write(table, create=True)
        file.commit()
    except BaseException:
        file.discard()
        raise
    return path


class ParquetFile:
    """A streamed Parquet file: batches appended to a temporary file, renamed at ``commit``.

    The temporary file is created on the first non-empty batch (or a write with ``create``),
    so a stream without rows writes no file. :func:`write_parquet` is one such file.
    """

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.schema = path, schema
        self.tmp: Path | None = None
        self.writer: pq.ParquetWriter | None = None

    def write(self, batch: pa.RecordBatch | pa.Table, *, create: bool = False) -> None:
        if batch.num_rows == 0 and not create:
            return
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = temporary_path(self.path)
            self.writer = pq.ParquetWriter(self.tmp, self.schema, **PARQUET_OPTIONS)
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        self.writer.write_table(table.cast(self.schema), row_group_size=ROW_GROUP_ROWS)

    def commit(self) -> bool:
        """Close and rename into place; False when no row was written (and no file made)."""
        if self.writer is None or self.tmp is None:
            return False
        self.writer.close()
        os.replace(self.tmp, self.path)
        return True

    def discard(self) -> None:
        """Remove the temporary file; the final file (if any) is left as it was."""
        if self.writer is not None:
            with suppress(Exception):
                self.writer.close()
        if self.tmp is not None:
            with suppress(FileNotFoundError):
                self.tmp.unlink()


def remove_temporary_files(root: Path) -> int:
    """Delete the temporary files a killed writer left anywhere under ``root``.

    Only for a folder no other writer is using. Returns how many were removed.
    """
    removed = 0
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if is_temporary(path):
                with suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
    return removed


__all__ = ["PARQUET_OPTIONS", "ROW_GROUP_ROWS", "ParquetFile", "is_temporary",
           "remove_temporary_files", "temporary_path", "write_parquet"]
