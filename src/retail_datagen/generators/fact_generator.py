"""Former import path of the fact engine, kept so existing imports keep working.

It re-exports the public names of :mod:`retail_datagen.generators.fact_generators`.
"""

from retail_datagen.generators.fact_generators import (
    FactDataGenerator,
    FactGenerationSummary,
    HourlyProgressTracker,
    MasterTableSpec,
    generate_historical_facts,
)

__all__ = [
    "FactDataGenerator",
    "HourlyProgressTracker",
    "FactGenerationSummary",
    "MasterTableSpec",
    "generate_historical_facts",
]
