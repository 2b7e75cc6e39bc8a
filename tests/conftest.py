"""Shared fixtures: the test configuration and databases generated from it."""

from __future__ import annotations

import asyncio
import shutil
from datetime import date
from pathlib import Path

import pytest

from retail_datagen.config.models import RetailConfig
from retail_datagen.config.settings import create_test_config

TEST_WEEK = (date(2024, 11, 25), date(2024, 12, 1))
PLAIN_DAYS = (date(2024, 3, 4), date(2024, 3, 5))


def config_in(folder: Path, **overrides) -> RetailConfig:
    """The test configuration with every path inside ``folder``."""
    paths = {"dict": str(folder / "dictionaries"), "master": str(folder / "master"),
             "facts": str(folder / "facts"), "duckdb": str(folder / "retail.duckdb")}
    return create_test_config(paths=paths, **overrides)


def generate(config: RetailConfig, start: date, end: date, *, validate: bool = False,
             tables=None, outbox: bool = False, executor: str | None = None):
    """Master data (if missing) and facts for ``start..end`` into the config's DuckDB file.

    ``executor`` is a ``FactDataGenerator.set_executor`` name (default: the process pool).
    """
    from retail_datagen.generators.fact_generators import FactDataGenerator
    from retail_datagen.generators.master_generator import MasterDataGenerator

    master = MasterDataGenerator(config)
    if not master.master_data_exists():
        master.generate_all()
    master.close()
    gen = FactDataGenerator(config)
    try:
        gen.set_included_tables(tables)
        if executor is not None:
            gen.set_executor(executor)
        return asyncio.run(gen.generate_historical_data(
            start, end, validate=validate, publish_to_outbox=outbox))
    finally:
        gen.close()


@pytest.fixture
def test_config(tmp_path: Path) -> RetailConfig:
    return config_in(tmp_path)


@pytest.fixture(scope="session")
def generated_week(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file with the test config's master data and facts for the test week.

    Shared by many tests: never write to it; copy it with ``copy_of`` first.
    """
    folder = tmp_path_factory.mktemp("week")
    generate(config_in(folder), *TEST_WEEK)
    return folder / "retail.duckdb"


@pytest.fixture
def copy_of(tmp_path: Path):
    def _copy(path: Path) -> Path:
        target = tmp_path / path.name
        shutil.copy(path, target)
        return target
    return _copy


#: Thursday before Black Friday to the Sunday after: Black Friday and another Friday, and a
#: Saturday and a Monday without a holiday effect, so every report metric is measurable.
REPORT_DAYS = (date(2024, 11, 21), date(2024, 12, 1))


@pytest.fixture(scope="session")
def generated_report_range(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file with the test config's facts for ``REPORT_DAYS`` (read it, never write)."""
    folder = tmp_path_factory.mktemp("report")
    generate(config_in(folder), *REPORT_DAYS)
    return folder / "retail.duckdb"
