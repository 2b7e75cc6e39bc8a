"""Exception hierarchy of retail_datagen.

Every error the library raises on purpose derives from :class:`RetailDatagenError`, so callers
can catch one type. The command line maps each family to an exit code (see ``cli.py``).
"""

from __future__ import annotations

from datetime import date


class RetailDatagenError(Exception):
    """Base class of every error raised by retail_datagen."""


class ConfigError(RetailDatagenError, ValueError):
    """An invalid configuration value or cross-field rule; the message names the field path."""


class ConfigFileNotFoundError(ConfigError, FileNotFoundError):
    """The configuration file does not exist."""


class DateRangeError(RetailDatagenError, ValueError):
    """An empty, reversed or non-contiguous date range."""


class UnknownTableError(RetailDatagenError, ValueError):
    """A table name that is neither a logical nor a database fact/dimension table name."""


class MasterDataError(RetailDatagenError):
    """Base class of master-data problems."""


class MasterDataMissingError(MasterDataError):
    """One or more dimension tables are absent or empty."""


class MasterDataExistsError(MasterDataError):
    """Master data already exists and ``force`` was not given."""


class DataPackageError(MasterDataError):
    """A bundled or override data file (or data package) is missing or too small for the config."""


class DatabaseError(RetailDatagenError):
    """Base class of database problems."""


class DatabaseLockedError(DatabaseError):
    """The DuckDB file is held by another process."""


class SchemaMismatchError(DatabaseError):
    """An existing table's columns or types differ from the contract."""


class StateMismatchError(DatabaseError):
    """The stored generator state belongs to another configuration or schema version."""


class SchemaContractError(RetailDatagenError):
    """A generator batch does not match its table contract (an internal error)."""


class GenerationError(RetailDatagenError):
    """A simulated day failed; the day was rolled back. ``day`` names it, the cause is chained."""

    def __init__(self, message: str, *, day: date | None = None) -> None:
        super().__init__(message)
        self.day = day


__all__ = [
    "ConfigError",
    "ConfigFileNotFoundError",
    "DataPackageError",
    "DatabaseError",
    "DatabaseLockedError",
    "DateRangeError",
    "GenerationError",
    "MasterDataError",
    "MasterDataExistsError",
    "MasterDataMissingError",
    "RetailDatagenError",
    "SchemaContractError",
    "SchemaMismatchError",
    "StateMismatchError",
    "UnknownTableError",
]
