"""Unit-day results handed from pool workers to the writer as files in shared memory.

A worker writes each unit-day's result into one file of the pool's folder (under
``/dev/shm`` where it exists, so the bytes stay in memory): every table one Arrow IPC stream,
back to back. The unit's next state is a pickle file of its own, which the unit's next task
reads in whichever worker runs it. Only file names and byte spans cross the pipe. The writer
maps the result file, reads every table zero-copy and unlinks it at once: the mapping lives as
long as the tables do. Sent through the pool's pipe instead, a large unit-day (about 75 MB of
Arrow data on the starter network) travels in 64 KiB chunks, each of which waits for the
writer's GIL; that cost a quarter of a second per day.

A folder is removed with everything in it by :func:`remove_result_folder` when the pool
closes, and by each worker when its writer dies (``process_pool``), so no file outlives a run.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa

from retail_datagen.generators.fact_generators.day_types import DayResult, StateWrites
from retail_datagen.generators.fact_generators.state import CarriedState

#: Where result files go when the machine has a memory-backed file system.
_SHARED_MEMORY = Path("/dev/shm")


class Span(NamedTuple):
    """The bytes of one Arrow IPC stream inside a result file."""

    offset: int
    length: int


@dataclass(frozen=True)
class ResultFile:
    """Where a unit-day's result lies: the file, the span of each table, the state file."""

    path: str
    batches: dict[str, list[Span]]
    #: Each ``StateWrites`` field: a Span for a table, else the value itself.
    writes: dict[str, Any]
    outbox: Span | None
    state_path: str


def result_folder_base() -> Path:
    """Where result folders are made: shared memory where possible, else the temp folder."""
    return _SHARED_MEMORY if os.access(_SHARED_MEMORY, os.W_OK) else Path(tempfile.gettempdir())


def make_result_folder() -> Path:
    """A new private folder for one pool's result files, named after the writer's pid."""
    return Path(tempfile.mkdtemp(prefix=f"retail-datagen-{os.getpid()}-",
                                 dir=result_folder_base()))


def remove_result_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def write_result(result: DayResult, folder: Path, unit: int, day: date) -> ResultFile:
    """Write ``result`` (a unit-day of ``unit``) into ``folder``; return where it lies."""
    stem = folder / f"u{unit:03d}-{day:%Y%m%d}"
    writes: dict[str, Any] = {}
    with pa.OSFile(f"{stem}.arrows", "wb") as sink:
        batches = {name: [_write_table(sink, part) for part in parts]
                   for name, parts in result.batches.items()}
        for field in fields(StateWrites):
            value = getattr(result.state_writes, field.name)
            writes[field.name] = (_write_table(sink, value) if isinstance(value, pa.Table)
                                  else value)
        outbox = None if result.outbox is None else _write_table(sink, result.outbox)
    state_path = f"{stem}.state"
    with open(state_path, "wb") as f:
        pickle.dump(result.state, f, protocol=pickle.HIGHEST_PROTOCOL)
    return ResultFile(f"{stem}.arrows", batches, writes, outbox, state_path)


def _write_table(sink: pa.NativeFile, table: pa.Table) -> Span:
    start = sink.tell()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Span(start, sink.tell() - start)


def read_result(ref: ResultFile) -> DayResult:
    """The :class:`DayResult` of ``ref``, its tables zero-copy over the mapped file.

    The result file is unlinked; the state file stays for the unit's next task
    (:func:`take_state`).
    """
    data = pa.memory_map(ref.path).read_buffer()
    os.unlink(ref.path)

    def table(span: Span) -> pa.Table:
        return pa.ipc.open_stream(data.slice(span.offset, span.length)).read_all()

    writes = {name: table(value) if isinstance(value, Span) else value
              for name, value in ref.writes.items()}
    with open(ref.state_path, "rb") as f:
        state = pickle.load(f)
    return DayResult(
        batches={name: [table(span) for span in spans] for name, spans in ref.batches.items()},
        state=state,
        state_writes=StateWrites(**writes),
        outbox=None if ref.outbox is None else table(ref.outbox),
    )


def take_state(state: CarriedState | str | None) -> CarriedState | None:
    """A task's starting state: given as it is, or the path of a state file, which is read
    and removed (each state file feeds exactly one task)."""
    if not isinstance(state, str):
        return state
    with open(state, "rb") as f:
        loaded = pickle.load(f)
    os.unlink(state)
    return loaded


__all__ = [
    "ResultFile",
    "Span",
    "make_result_folder",
    "read_result",
    "remove_result_folder",
    "result_folder_base",
    "take_state",
    "write_result",
]
