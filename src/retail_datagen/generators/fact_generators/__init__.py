"""The fact engine: ``FactDataGenerator`` and its results, progress and convenience API."""

from .convenience import generate_historical_facts
from .core import FactDataGenerator
from .models import FactGenerationSummary, MasterTableSpec
from .progress import HourlyProgressTracker

__all__ = [
    "FactDataGenerator",
    "HourlyProgressTracker",
    "FactGenerationSummary",
    "MasterTableSpec",
    "generate_historical_facts",
]
