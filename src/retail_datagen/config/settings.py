"""The starter configuration and config-file discovery."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from retail_datagen.config.models import RetailConfig
from retail_datagen.errors import ConfigFileNotFoundError

STARTER_CONFIG: dict[str, Any] = {
    "seed": 42,
    "volume": {
        "stores": 86, "dcs": 20, "refrigerated_trucks": 300, "non_refrigerated_trucks": 450,
        "total_geographies": 20, "total_customers": 403000, "total_products": 10000,
        "customers_per_day": 427, "items_per_ticket_mean": 8.2,
        "online_orders_per_day": 12000, "marketing_impressions_per_day": 8950,
        "dc_initial_inventory_min": 500, "dc_initial_inventory_max": 5000,
        "store_initial_inventory_min": 0, "store_initial_inventory_max": 10,
        "dc_reorder_point_min": 50, "dc_reorder_point_max": 500,
        "store_reorder_point_min": 0, "store_reorder_point_max": 4,
        "supplier_refrigerated_trucks": 12, "supplier_non_refrigerated_trucks": 18,
        "truck_dc_assignment_rate": 0.85, "trucks_per_dc": None, "truck_capacity": 15000,
    },
    "realtime": {
        "emit_interval_ms": 500, "burst": 100, "azure_connection_string": "",
        "max_batch_size": 256, "batch_timeout_ms": 1000, "retry_attempts": 3,
        "backoff_multiplier": 2.0, "circuit_breaker_enabled": True, "monitoring_interval": 30,
        "max_buffer_size": 10000, "enable_dead_letter_queue": True,
    },
    "paths": {"dict": "data/dictionaries", "master": "data/master", "facts": "data/facts",
              "duckdb": "data/retail.duckdb"},
    "stream": {"hub": "retail-events"},
    "historical": {"start_date": "2024-01-01"},
    "performance": {"max_cpu_percent": 100.0, "max_workers": None, "batch_hours": 24},
}

TEST_VOLUME_OVERRIDES: dict[str, Any] = {
    "stores": 6, "dcs": 2, "total_geographies": 20, "total_customers": 3000,
    "total_products": 400, "customers_per_day": 120, "items_per_ticket_mean": 4.2,
    "online_orders_per_day": 110, "marketing_impressions_per_day": 2000,
    "store_initial_inventory_min": 10, "store_initial_inventory_max": 60,
    "store_reorder_point_min": 0, "store_reorder_point_max": 4,
    "refrigerated_trucks": 8, "non_refrigerated_trucks": 12, "trucks_per_dc": None,
}


def create_default_config() -> RetailConfig:
    """The starter configuration (86 stores, 403,000 customers, 10,000 products)."""
    return RetailConfig(**copy.deepcopy(STARTER_CONFIG))


def create_test_config(**overrides: Any) -> RetailConfig:
    """The small test configuration (6 stores) used by the test suite and benchmarks."""
    data = copy.deepcopy(STARTER_CONFIG)
    data["volume"].update(TEST_VOLUME_OVERRIDES)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return RetailConfig(**data)


def load_config(path: str | os.PathLike[str] | None = None) -> RetailConfig:
    """Load ``path``, or ``./config.json``, or ``./config/config.json``."""
    if path is not None:
        return RetailConfig.from_file(path)
    for candidate in (Path("config.json"), Path("config") / "config.json"):
        if candidate.is_file():
            return RetailConfig.from_file(candidate)
    raise ConfigFileNotFoundError(
        "no config.json or config/config.json in the current directory "
        "(create one with 'retail-datagen init-config')"
    )


__all__ = ["STARTER_CONFIG", "create_default_config", "create_test_config", "load_config"]
