"""Unit-day results through shared-memory files: what a worker writes the writer reads back
unchanged, zero-copy, and no file outlives its reading."""

from __future__ import annotations

import pickle
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from retail_datagen.generators.fact_generators.day_types import DayResult, StateWrites
from retail_datagen.generators.fact_generators.result_files import (
    make_result_folder,
    read_result,
    remove_result_folder,
    result_folder_base,
    take_state,
    write_result,
)

DAY = date(2024, 3, 4)


def _table(n: int, offset: int = 0) -> pa.Table:
    return pa.table({"id": pa.array(np.arange(offset, offset + n), pa.int64()),
                     "name": [f"row-{i}" for i in range(offset, offset + n)]})


def _result() -> DayResult:
    writes = StateWrites(
        inventory=_table(5), initial_inventory=None, shipments=_table(2, 10),
        shipment_lines=_table(3), trucks=_table(1), supplier_orders=_table(0),
        campaigns=_table(2), new_pending_returns=_table(4, 7), first_day=DAY,
        config_rows=None)
    return DayResult(batches={"receipts": [_table(3), _table(4, 3)], "stockouts": [_table(0)]},
                     state={"on_hand": np.arange(6, dtype=np.int32).reshape(2, 3)},
                     state_writes=writes, outbox=_table(6, 100))


def test_a_result_reads_back_equal_and_its_file_is_gone() -> None:
    folder = make_result_folder()
    try:
        assert folder.parent == result_folder_base() and folder.name.startswith("retail-datagen-")
        original = _result()
        ref = write_result(original, folder, unit=7, day=DAY)
        assert len(pickle.dumps(ref)) < 2_000  # only names and spans cross the pipe
        back = read_result(ref)
        assert not Path(ref.path).exists()  # unlinked once mapped
        for name, parts in original.batches.items():
            assert [t.equals(b) for t, b in zip(parts, back.batches[name], strict=True)] \
                == [True] * len(parts)
        assert back.outbox.equals(original.outbox)
        for field in ("inventory", "shipments", "shipment_lines", "trucks", "supplier_orders",
                      "campaigns", "new_pending_returns"):
            assert getattr(back.state_writes, field).equals(getattr(original.state_writes, field))
        assert back.state_writes.initial_inventory is None
        assert back.state_writes.first_day == DAY
        # The state is read by the writer and stays for the unit's next task, which takes it.
        assert np.array_equal(back.state["on_hand"], original.state["on_hand"])
        taken = take_state(ref.state_path)
        assert np.array_equal(taken["on_hand"], original.state["on_hand"])
        assert not Path(ref.state_path).exists()
        assert take_state(None) is None
    finally:
        remove_result_folder(folder)
    assert not folder.exists()
