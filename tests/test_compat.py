"""Public behaviour that callers written for earlier releases rely on."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pydantic
import pytest

from retail_datagen.config.models import (
    ConfigValidationError,
    HistoricalConfig,
    MarketingCostConfig,
    PathsConfig,
    PerformanceConfig,
    RealtimeConfig,
    RetailConfig,
    StorageConfig,
    StreamConfig,
    VolumeConfig,
)
from retail_datagen.config.settings import STARTER_CONFIG, create_default_config
from retail_datagen.errors import ConfigError, RetailDatagenError
from retail_datagen.generators.fact_generators.progress import HourlyProgressTracker

ENV = "AZURE_EVENTHUB_CONNECTION_STRING"
CONNECTION = "Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s"


@pytest.fixture(autouse=True)
def _no_connection_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


def starter() -> dict:
    return copy.deepcopy(STARTER_CONFIG)


# --- realtime.azure_connection_string from the environment -----------------------------------


def test_empty_connection_string_is_filled_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(ENV, CONNECTION)
    config = RetailConfig(**starter())
    assert config.realtime.azure_connection_string == CONNECTION
    assert config.realtime.get_connection_string() == CONNECTION
    section = RealtimeConfig(emit_interval_ms=1, burst=1)
    assert section.azure_connection_string == CONNECTION


def test_a_written_connection_string_is_kept_but_the_environment_wins_in_the_getter(
        monkeypatch) -> None:
    data = starter()
    data["realtime"]["azure_connection_string"] = "mock://local"
    monkeypatch.setenv(ENV, CONNECTION)
    config = RetailConfig(**data)
    assert config.realtime.azure_connection_string == "mock://local"
    assert config.realtime.get_connection_string() == CONNECTION


def test_without_the_environment_the_field_stays_empty() -> None:
    config = create_default_config()
    assert config.realtime.azure_connection_string == ""
    assert config.realtime.get_connection_string() == ""


def test_a_bad_connection_string_from_the_environment_is_a_config_error(monkeypatch) -> None:
    monkeypatch.setenv(ENV, "amqp://wrong")
    with pytest.raises(ConfigError, match=rf"realtime\.azure_connection_string.*{ENV}"):
        RetailConfig(**starter())


def test_the_filled_value_is_not_written_back_and_not_fingerprinted(monkeypatch,
                                                                   tmp_path: Path) -> None:
    plain = create_default_config()
    monkeypatch.setenv(ENV, CONNECTION)
    filled = create_default_config()
    assert filled.fingerprint() == plain.fingerprint()
    path = tmp_path / "config.json"
    filled.to_file(path)
    assert json.loads(path.read_text())["realtime"]["azure_connection_string"] == ""


# --- HourlyProgressTracker.reset --------------------------------------------------------------


def test_progress_reset_leaves_overall_progress_zero() -> None:
    tracker = HourlyProgressTracker(["receipts", "receipt_lines"])
    assert tracker.get_current_progress()["overall_progress"] == 0.0
    for hour in range(24):
        tracker.update_hourly_progress("receipts", 1, hour, total_days=2)
    assert tracker.get_current_progress()["overall_progress"] == 0.5
    tracker.reset()
    progress = tracker.get_current_progress()
    assert progress["overall_progress"] == 0.0
    assert progress["per_table_progress"] == {"receipts": 0.0, "receipt_lines": 0.0}
    assert progress["tables_in_progress"] == []
    assert progress["completed_hours"] == {"receipts": 0, "receipt_lines": 0}
    tracker.update_hourly_progress("receipts", 1, 0, total_days=1)
    assert tracker.get_current_progress()["overall_progress"] == pytest.approx(1 / 24)


# --- pydantic.ValidationError keeps being raised ----------------------------------------------

SECTION_CASES = [
    (VolumeConfig, {"stores": 0, "dcs": 1, "customers_per_day": 1, "items_per_ticket_mean": 1}),
    (VolumeConfig, {"stores": 1, "dcs": 1, "customers_per_day": 1, "items_per_ticket_mean": 1,
                    "store_initial_inventory_min": 9, "store_initial_inventory_max": 8}),
    (RealtimeConfig, {"emit_interval_ms": 1, "burst": 1, "azure_connection_string": "x"}),
    (PathsConfig, {"dict": " ", "master": "m", "facts": "f"}),
    (StreamConfig, {"hub": ""}),
    (HistoricalConfig, {"start_date": "2024-13-01"}),
    (PerformanceConfig, {"batch_hours": 25}),
    (MarketingCostConfig, {"email_cost_min": 0.5, "email_cost_max": 0.1}),
    (StorageConfig, {"account_key": 5}),
]


@pytest.mark.parametrize(("model", "data"), SECTION_CASES,
                         ids=[f"{m.__name__}-{i}" for i, (m, _) in enumerate(SECTION_CASES)])
def test_section_models_raise_a_pydantic_validation_error_that_is_a_config_error(model,
                                                                                 data) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        model(**data)
    assert isinstance(caught.value, ConfigError)
    assert caught.value.error_count() >= 1
    with pytest.raises(ConfigError):
        model.model_validate(data)


def test_retail_config_error_is_caught_by_both_handlers() -> None:
    data = starter()
    data["volume"]["dc_initial_inventory_min"] = 600
    data["volume"]["dc_initial_inventory_max"] = 500
    for handler in (pydantic.ValidationError, ConfigError, RetailDatagenError, ValueError):
        with pytest.raises(handler):
            RetailConfig(**data)
    with pytest.raises(ConfigValidationError) as caught:
        RetailConfig.model_validate(data)
    error = caught.value
    assert str(error) == ("invalid configuration: volume.dc_initial_inventory_min: "
                          "must be <= max (600 > 500)")
    # pydantic's own API still describes the failure, and the original error is chained.
    assert [e["loc"] for e in error.errors()] == [("volume",)]
    assert isinstance(error.__cause__, pydantic.ValidationError)
    assert error.title == "RetailConfig"


def test_legacy_handler_pattern_keeps_working(tmp_path: Path) -> None:
    """A caller of an earlier release: ``try: RetailConfig(**d) except ValidationError``."""
    data = starter()
    data["volume"]["stores"] = -1

    def load(d: dict) -> str:
        try:
            RetailConfig(**d)
        except pydantic.ValidationError as exc:
            return "; ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        return "ok"

    assert load(data) == "volume.stores"
    assert load(starter()) == "ok"
