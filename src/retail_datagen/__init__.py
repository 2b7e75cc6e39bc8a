"""retail_datagen: realistic, internally consistent, deterministic synthetic retail data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from retail_datagen.config.models import RetailConfig
    from retail_datagen.generators.fact_generators import FactDataGenerator
    from retail_datagen.generators.master_generator import MasterDataGenerator

_LAZY = {
    "RetailConfig": "retail_datagen.config.models",
    "FactDataGenerator": "retail_datagen.generators.fact_generators",
    "MasterDataGenerator": "retail_datagen.generators.master_generator",
}


def __getattr__(name: str) -> Any:
    # Lazy so that `import retail_datagen` stays cheap for the CLI's --help.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'retail_datagen' has no attribute {name!r}")


__all__ = ["FactDataGenerator", "MasterDataGenerator", "RetailConfig", "__version__"]
