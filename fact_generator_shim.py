"""Legacy entry point for scripts run from the repository root.

It re-exports the public names of :mod:`retail_datagen.generators.fact_generators`. When the
package is not installed, the ``src`` folder beside this file is put on ``sys.path`` first.
"""


def _make_package_importable() -> None:
    import sys
    from pathlib import Path

    try:
        import retail_datagen  # noqa: F401
    except ImportError:
        src = Path(__file__).resolve().parent / "src"
        if src.is_dir():
            sys.path.insert(0, str(src))


_make_package_importable()

from retail_datagen.generators.fact_generators import (  # noqa: E402
    FactDataGenerator,
    FactGenerationSummary,
    HourlyProgressTracker,
    MasterTableSpec,
    generate_historical_facts,
)

# Only the public names stay, so this module matches the package's __all__ exactly.
del _make_package_importable

__all__ = [
    "FactDataGenerator",
    "HourlyProgressTracker",
    "FactGenerationSummary",
    "MasterTableSpec",
    "generate_historical_facts",
]
