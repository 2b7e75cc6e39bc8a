"""Result and specification dataclasses of the fact engine."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class FactGenerationSummary:
    """What one ``generate_historical_data`` call produced.

    Attributes:
        date_range: ``(start 00:00, end 00:00)`` of the requested range.
        facts_generated: Logical table name -> rows written by this call (0 if excluded).
        total_records: Sum of ``facts_generated``.
        validation_results: ``InvariantReport.to_dict()``, or ``{"skipped": True}``.
        generation_time_seconds: Wall time of the call.
        partitions_created: Distinct (fact table, event date) pairs written with at least one row.
        days_generated: Days simulated and committed by this call.
        days_skipped: Days inside the range that were already committed earlier.
        outbox_events: Rows added to ``streaming_outbox``.
    """

    date_range: tuple[datetime, datetime]
    facts_generated: dict[str, int]
    total_records: int
    validation_results: dict[str, Any]
    generation_time_seconds: float
    partitions_created: int
    days_generated: int = 0
    days_skipped: int = 0
    outbox_events: int = 0


@dataclass
class MasterTableSpec:
    """How a master table used to be loaded from CSV (deprecated).

    Master data now lives in the database and is read by ``load_master_data``; the class is
    kept so that old imports keep working, and building one warns.

    Attributes:
        attr_name: Attribute the loaded rows were stored under.
        filename: CSV file name.
        model_cls: Row model class.
        dtype: pandas dtypes for ``read_csv``.
        row_adapter: Optional per-row conversion.
    """

    attr_name: str
    filename: str
    model_cls: type
    dtype: dict | None = None
    row_adapter: Callable | None = None

    def __post_init__(self) -> None:
        # stacklevel 3 skips __post_init__ and the generated __init__, pointing at the caller.
        warnings.warn(
            "MasterTableSpec is deprecated: master data is read from the database by "
            "FactDataGenerator.load_master_data()",
            DeprecationWarning,
            stacklevel=3,
        )
