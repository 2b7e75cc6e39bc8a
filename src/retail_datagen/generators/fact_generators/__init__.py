"""The fact engine: ``FactDataGenerator`` and its results, progress and convenience API."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .convenience import generate_historical_facts
    from .core import FactDataGenerator
    from .models import FactGenerationSummary, MasterTableSpec
    from .progress import HourlyProgressTracker

# Imported on first use, so that a pool worker, which imports only the engine's inner modules,
# does not load the writer's database drivers.
_EXPORTS = {
    "FactDataGenerator": ".core",
    "HourlyProgressTracker": ".progress",
    "FactGenerationSummary": ".models",
    "MasterTableSpec": ".models",
    "generate_historical_facts": ".convenience",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "FactDataGenerator",
    "HourlyProgressTracker",
    "FactGenerationSummary",
    "MasterTableSpec",
    "generate_historical_facts",
]
