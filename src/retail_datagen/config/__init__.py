"""Configuration: ``RetailConfig`` and its sections, the starter config and loading."""

from retail_datagen.config.models import Config, RetailConfig
from retail_datagen.config.settings import (
    STARTER_CONFIG,
    create_default_config,
    create_test_config,
    load_config,
)

__all__ = [
    "STARTER_CONFIG",
    "Config",
    "RetailConfig",
    "create_default_config",
    "create_test_config",
    "load_config",
]
