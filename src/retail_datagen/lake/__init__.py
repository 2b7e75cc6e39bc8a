"""The Parquet lake output (sharding.md §5): a folder instead of a database.

``prepare_lake`` starts or checks a lake and returns a :class:`LakePlan`; ``run_unit`` runs one
unit over a range, writing its files; ``generate_lake`` does both with the in-process or a local
process-pool executor; ``lake_watermark`` is the last day every unit has completed. Names are
imported on first use, so that importing the writer alone stays light.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "LakePlan": "runner", "LakeSummary": "runner", "MANIFEST_SCHEMA": "runner",
    "generate_lake": "runner", "lake_watermark": "runner", "prepare_lake": "runner",
    "prune_state": "runner", "run_unit": "runner", "unit_progress": "runner",
    "write_parquet": "writer", "PARQUET_OPTIONS": "writer",
    "open_lake": "views", "validate_lake": "views",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retail_datagen.lake' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"retail_datagen.lake.{module}"), name)


__all__ = sorted(_EXPORTS)
