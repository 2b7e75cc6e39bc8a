"""Configuration models (``RetailConfig`` and its sections).

This module knows nothing about generation or storage: it validates values and computes the
fingerprint that binds stored data to the configuration that made it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from retail_datagen.errors import ConfigError, ConfigFileNotFoundError


def _drop_comment_keys(value: Any) -> Any:
    """Config files of earlier releases carry ``"_comment"`` keys at any level; ignore them.

    Only this level is cleaned: every nested section cleans its own keys, and not descending
    into other values keeps an arbitrarily deep JSON value from exhausting the stack.
    """
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if not str(k).startswith("_")}
    return value


class ConfigValidationError(ConfigError, ValidationError):
    """A configuration that failed validation: both a ``ConfigError`` and a pydantic
    ``ValidationError``.

    Code written against ``except pydantic.ValidationError`` around ``RetailConfig(...)`` or a
    section model keeps working, and ``except ConfigError`` catches the same error. pydantic's
    ``ValidationError`` has no usable constructor, so instances are made with
    :meth:`from_validation_error`, which copies the line errors (``errors()``, ``error_count()``
    and ``title`` behave as pydantic's); ``str()`` is the message naming every field path.
    """

    _message: str = ""

    @classmethod
    def from_validation_error(cls, exc: ValidationError, message: str) -> ConfigValidationError:
        """The error for ``exc`` (chained as the cause) with ``message`` as its text."""
        try:
            error = cls.from_exception_data(exc.title, exc.errors(include_url=False))
        except (TypeError, KeyError, ValueError):
            # A line error pydantic cannot rebuild must not hide the message; the cause keeps it.
            error = cls.from_exception_data(exc.title, [])
        error._message = message
        error.__cause__ = exc
        return error

    def __str__(self) -> str:
        return self._message


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ConfigValidationError:
            raise
        except ValidationError as exc:
            raise config_error_from(exc) from exc

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Any:
        try:
            return super().model_validate(obj, **kwargs)
        except ConfigValidationError:
            raise
        except ValidationError as exc:
            raise config_error_from(exc) from exc

    @model_validator(mode="before")
    @classmethod
    def _ignore_comments(cls, data: Any) -> Any:
        return _drop_comment_keys(data)


def _check_min_max(model: BaseModel, *prefixes: str, suffixes=("_min", "_max")) -> None:
    for prefix in prefixes:
        lo = getattr(model, prefix + suffixes[0])
        hi = getattr(model, prefix + suffixes[1])
        if lo > hi:
            raise ValueError(f"{prefix}{suffixes[0]}: must be <= max ({lo} > {hi})")


class VolumeConfig(_Section):
    """How big the chain is and how busy its days are."""

    stores: int = Field(gt=0, le=99_999)
    dcs: int = Field(gt=0, le=999)
    customers_per_day: int = Field(gt=0)
    items_per_ticket_mean: float = Field(gt=0)
    refrigerated_trucks: int = Field(default=8, ge=1)
    non_refrigerated_trucks: int = Field(default=12, ge=0)
    total_geographies: int = Field(default=100, gt=0)
    total_customers: int = Field(default=500_000, gt=0)
    total_products: int = Field(default=10_000, gt=0)
    online_orders_per_day: int = Field(default=2500, ge=0)
    marketing_impressions_per_day: int = Field(default=10_000, ge=0)
    dc_initial_inventory_min: int = Field(default=500, ge=0)
    dc_initial_inventory_max: int = Field(default=5000, ge=0)
    store_initial_inventory_min: int = Field(default=20, ge=0)
    store_initial_inventory_max: int = Field(default=200, ge=0)
    dc_reorder_point_min: int = Field(default=50, ge=0)
    dc_reorder_point_max: int = Field(default=500, ge=0)
    store_reorder_point_min: int = Field(default=5, ge=0)
    store_reorder_point_max: int = Field(default=50, ge=0)
    supplier_refrigerated_trucks: int = Field(default=12, ge=0)
    supplier_non_refrigerated_trucks: int = Field(default=18, ge=0)
    truck_dc_assignment_rate: float = Field(default=0.85, gt=0, le=1)
    trucks_per_dc: int | None = Field(default=None, gt=0)
    truck_capacity: int = Field(default=15_000, ge=1000)

    @model_validator(mode="after")
    def _cross_field(self) -> VolumeConfig:
        _check_min_max(
            self,
            "dc_initial_inventory",
            "store_initial_inventory",
            "dc_reorder_point",
            "store_reorder_point",
        )
        if self.dcs > self.total_geographies:
            raise ValueError(
                f"dcs: must be <= total_geographies ({self.dcs} > {self.total_geographies})"
            )
        fleet = self.refrigerated_trucks + self.non_refrigerated_trucks
        if fleet < 1:
            raise ValueError("refrigerated_trucks: the DC fleet needs at least one truck")
        k, _ = self.assigned_fleet()
        # Servability needs the store placement, so master checks it (master_fleet).
        if self.trucks_per_dc is not None and k > fleet:
            raise ValueError(
                f"trucks_per_dc: trucks_per_dc x dcs must be <= the fleet ({k} > {fleet})"
            )
        return self

    def assigned_fleet(self) -> tuple[int, int]:
        """``(K, K_ref)``: DC_FLEET trucks in all and refrigerated (master-data.md §5)."""
        fleet = self.refrigerated_trucks + self.non_refrigerated_trucks
        if self.trucks_per_dc is not None:
            k = self.trucks_per_dc * self.dcs
        else:
            k = int(fleet * self.truck_dc_assignment_rate)
        k = min(k, fleet) if self.trucks_per_dc is None else k
        k_ref = (2 * k * self.refrigerated_trucks + fleet) // (2 * fleet)
        return k, k_ref


CONNECTION_STRING_ENV = "AZURE_EVENTHUB_CONNECTION_STRING"
_CONNECTION_PREFIXES = ("Endpoint=sb://", "mock://", "test://")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class RealtimeConfig(_Section):
    """Outbox consumer settings (operational)."""

    emit_interval_ms: int = Field(gt=0)
    burst: int = Field(gt=0)
    azure_connection_string: str = ""
    max_batch_size: int = Field(default=256, ge=1, le=10_000)
    batch_timeout_ms: int = Field(default=1000, gt=0)
    retry_attempts: int = Field(default=3, ge=1)
    backoff_multiplier: float = Field(default=2.0, ge=1.0)
    circuit_breaker_enabled: bool = True
    monitoring_interval: int = Field(default=30, gt=0)
    max_buffer_size: int = Field(default=10_000, gt=0)
    enable_dead_letter_queue: bool = True
    circuit_breaker_failure_threshold: int = Field(default=5, gt=0)
    circuit_breaker_recovery_timeout: int = Field(default=60, gt=0)

    @model_validator(mode="after")
    def _connection_string(self) -> RealtimeConfig:
        # An empty field is filled from the environment, as earlier releases did; a filled
        # value obeys the same prefix rule as a written one.
        origin = ""
        if not self.azure_connection_string:
            self.azure_connection_string = os.environ.get(CONNECTION_STRING_ENV, "")
            origin = f" (from {CONNECTION_STRING_ENV})"
        value = self.azure_connection_string
        if value and not value.startswith(_CONNECTION_PREFIXES):
            raise ValueError(
                "azure_connection_string: must start with 'Endpoint=sb://', 'mock://' or "
                f"'test://'{origin}")
        return self

    def get_connection_string(self) -> str:
        """The connection string from ``AZURE_EVENTHUB_CONNECTION_STRING``, else the field."""
        return os.environ.get(CONNECTION_STRING_ENV) or self.azure_connection_string


class PathsConfig(_Section):
    """Where files live. ``dictionaries`` is written as ``"dict"`` in JSON."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    dictionaries: str = Field(alias="dict")
    master: str
    facts: str
    duckdb: str = "data/retail.duckdb"

    @field_validator("dictionaries", "master", "facts", "duckdb")
    @classmethod
    def _non_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value


class StreamConfig(_Section):
    hub: str

    @field_validator("hub")
    @classmethod
    def _non_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class HistoricalConfig(_Section):
    start_date: str = "2024-01-01"

    @field_validator("start_date")
    @classmethod
    def _valid_date(cls, value: str) -> str:
        try:
            # fromisoformat alone would also take "20240101" or "2024-W01-1".
            start = date.fromisoformat(value) if _ISO_DATE.fullmatch(value) else None
        except ValueError:
            start = None
        if start is None:
            raise ValueError(f"must be a date YYYY-MM-DD ({value!r})")
        if start > date.today():
            raise ValueError(f"must not be later than today ({value} > {date.today()})")
        return value

    @property
    def start(self) -> date:
        return date.fromisoformat(self.start_date)


class PerformanceConfig(_Section):
    """How fast, never what: ``max_workers`` is the number of generation processes of the
    process-pool executor (``facts --workers N``); ``batch_hours`` the hours of rows per
    INSERT chunk on SQLAlchemy targets."""

    max_cpu_percent: float = Field(default=100.0, gt=0, le=100)
    max_workers: int | None = Field(default=None, ge=1)
    batch_hours: int = Field(default=24, ge=1, le=24)

    def get_max_workers(self) -> int:
        """``max_workers``, or the CPU share allowed by ``max_cpu_percent``."""
        if self.max_workers is not None:
            return self.max_workers
        return max(1, int((os.cpu_count() or 1) * self.max_cpu_percent // 100))


MARKETING_CHANNELS: tuple[str, ...] = (
    "email", "display", "social", "search", "video", "facebook", "google", "instagram", "youtube",
)


class MarketingCostConfig(_Section):
    """USD per impression, uniform on [min, max] per channel, times a device multiplier."""

    email_cost_min: float = Field(default=0.10, gt=0)
    email_cost_max: float = Field(default=0.25, gt=0)
    display_cost_min: float = Field(default=0.50, gt=0)
    display_cost_max: float = Field(default=2.00, gt=0)
    social_cost_min: float = Field(default=0.75, gt=0)
    social_cost_max: float = Field(default=3.00, gt=0)
    search_cost_min: float = Field(default=1.00, gt=0)
    search_cost_max: float = Field(default=5.00, gt=0)
    video_cost_min: float = Field(default=1.50, gt=0)
    video_cost_max: float = Field(default=5.25, gt=0)
    facebook_cost_min: float = Field(default=0.25, gt=0)
    facebook_cost_max: float = Field(default=3.00, gt=0)
    google_cost_min: float = Field(default=1.00, gt=0)
    google_cost_max: float = Field(default=5.00, gt=0)
    instagram_cost_min: float = Field(default=0.20, gt=0)
    instagram_cost_max: float = Field(default=3.00, gt=0)
    youtube_cost_min: float = Field(default=1.50, gt=0)
    youtube_cost_max: float = Field(default=5.25, gt=0)
    mobile_multiplier: float = Field(default=1.0, gt=0)
    tablet_multiplier: float = Field(default=1.2, gt=0)
    desktop_multiplier: float = Field(default=1.5, gt=0)

    @model_validator(mode="after")
    def _min_le_max(self) -> MarketingCostConfig:
        _check_min_max(self, *(f"{c}_cost" for c in MARKETING_CHANNELS))
        return self


class StorageConfig(_Section):
    """Cloud storage settings (operational, unused by generation); filled from the environment."""

    account_uri: str | None = None
    account_key: str | None = None

    @model_validator(mode="after")
    def _from_env(self) -> StorageConfig:
        if self.account_uri is None:
            self.account_uri = os.environ.get("AZURE_STORAGE_ACCOUNT_URI") or os.environ.get(
                "AZURE_STORAGE_ACCOUNT_URL"
            )
        if self.account_key is None:
            self.account_key = os.environ.get("AZURE_STORAGE_ACCOUNT_KEY")
        return self


def _error_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if part not in ("function-after", "function-before"))


def config_error_from(exc: ValidationError) -> ConfigValidationError:
    """A ``ConfigValidationError`` whose message names every failing field path and its rule."""
    parts = []
    for err in exc.errors():
        path = _error_path(err["loc"])
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if ": " in msg and not path.endswith(msg.split(": ", 1)[0]) and err["type"] == "value_error":
            # Cross-field rules already name their field ("dcs: must be ...").
            parts.append(f"{path + '.' if path else ''}{msg}")
        elif err["type"] == "extra_forbidden":
            parts.append(f"{path}: unknown field (remove it or check its spelling)")
        elif err["type"] == "missing":
            parts.append(f"{path}: required field is missing")
        else:
            parts.append(f"{path}: {msg} (got {err.get('input')!r})")
    return ConfigValidationError.from_validation_error(
        exc, "invalid configuration: " + "; ".join(parts))


class RetailConfig(_Section):
    """The whole configuration. Construct it, or load it with :meth:`from_file`.

    Invalid values raise :class:`ConfigValidationError` (a ``ConfigError`` and a pydantic
    ``ValidationError``) naming the field path; so do the section models.
    """

    seed: int = Field(ge=0, le=2**32 - 1)
    volume: VolumeConfig
    realtime: RealtimeConfig
    paths: PathsConfig
    stream: StreamConfig
    historical: HistoricalConfig = Field(default_factory=HistoricalConfig)
    performance: PerformanceConfig = Field(default_factory=PerformanceConfig)
    marketing_cost: MarketingCostConfig = Field(default_factory=MarketingCostConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> RetailConfig:
        """Load a JSON config file. Missing file: ``ConfigFileNotFoundError``; bad: ``ConfigError``."""
        file = Path(path)
        if not file.is_file():
            raise ConfigFileNotFoundError(
                f"config file not found: {file} (create one with 'retail-datagen init-config')"
            )
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{file}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from exc
        except RecursionError as exc:
            raise ConfigError(f"{file}: JSON nested too deeply to be a config") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})"
                              ) from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: the top level must be a JSON object")
        return cls(**data)

    def to_file(self, path: str | os.PathLike[str]) -> None:
        """Write the config as JSON (indent 2, declared field order); env-filled values blanked."""
        data = self.model_dump(mode="json", by_alias=True)
        if os.environ.get(CONNECTION_STRING_ENV):
            data["realtime"]["azure_connection_string"] = ""
        for key, env in (
            ("account_uri", ("AZURE_STORAGE_ACCOUNT_URI", "AZURE_STORAGE_ACCOUNT_URL")),
            ("account_key", ("AZURE_STORAGE_ACCOUNT_KEY",)),
        ):
            if any(os.environ.get(e) for e in env):
                data["storage"][key] = None
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def config_data(self) -> str:
        """The canonical JSON of the fields that change generated data."""
        dumped = self.model_dump(mode="json")
        data = {
            "seed": dumped["seed"],
            "volume": dumped["volume"],
            "marketing_cost": dumped["marketing_cost"],
            "historical": {"start_date": dumped["historical"]["start_date"]},
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def fingerprint(self) -> str:
        """SHA-256 over ``config_data`` and the effective bundled data files."""
        from retail_datagen.datafiles import data_file_bytes

        parts = [self.config_data()]
        for name in ("product_catalog.csv", "brands.csv", "state_sales_tax.csv"):
            parts.append(hashlib.sha256(data_file_bytes(name, self.paths.dictionaries)).hexdigest())
        return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


Config = RetailConfig

__all__ = [
    "Config",
    "ConfigValidationError",
    "HistoricalConfig",
    "MarketingCostConfig",
    "PathsConfig",
    "PerformanceConfig",
    "RealtimeConfig",
    "RetailConfig",
    "StorageConfig",
    "StreamConfig",
    "VolumeConfig",
]
