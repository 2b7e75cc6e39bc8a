"""Bad input to the fact engine gets a typed error, and leaves the database as it was."""

from __future__ import annotations

import asyncio
from datetime import date, datetime

import duckdb
import pytest

from conftest import config_in, generate
from retail_datagen.errors import (
    DateRangeError,
    MasterDataError,
    MasterDataMissingError,
    SchemaMismatchError,
    StateMismatchError,
    UnknownTableError,
)
from retail_datagen.generators.fact_generators import FactDataGenerator
from retail_datagen.generators.master_generator import MasterDataGenerator

pytestmark = pytest.mark.slow


def _run(config, start, end):
    gen = FactDataGenerator(config)
    try:
        return asyncio.run(gen.generate_historical_data(start, end, validate=False))
    finally:
        gen.close()


@pytest.fixture
def two_days(tmp_path):
    config = config_in(tmp_path)
    generate(config, date(2024, 3, 4), date(2024, 3, 5))
    return config


def test_end_before_start(test_config):
    gen = FactDataGenerator(test_config)
    with pytest.raises(DateRangeError, match="before start"):
        asyncio.run(gen.generate_historical_data(date(2024, 3, 5), date(2024, 3, 4)))
    gen.close()


def test_missing_master_data_lists_every_dimension(test_config):
    gen = FactDataGenerator(test_config)
    with pytest.raises(MasterDataMissingError, match="dim_customers"):
        gen.load_master_data()
    gen.close()


def test_a_dimension_value_outside_its_vocabulary_is_named(tmp_path):
    config = config_in(tmp_path)
    with MasterDataGenerator(config) as master:
        master.generate_all()
    con = duckdb.connect(config.paths.duckdb)
    con.execute("UPDATE dim_customers SET shopper_segment = 'NOBODY' WHERE customer_id = 2")
    con.close()
    gen = FactDataGenerator(config)
    with pytest.raises(MasterDataError, match=r"shopper_segment: \['NOBODY'\]"):
        gen.load_master_data()
    gen.close()


def test_unknown_table_lists_valid_names(test_config):
    gen = FactDataGenerator(test_config)
    with pytest.raises(UnknownTableError, match="receipt_lines"):
        gen.set_included_tables(["receipts", "bogus"])
    gen.close()


def test_gap_and_overlap_before_first_day(two_days):
    with pytest.raises(DateRangeError, match="next day is 2024-03-06"):
        _run(two_days, date(2024, 3, 8), date(2024, 3, 9))
    with pytest.raises(DateRangeError, match="not contiguous"):
        _run(two_days, date(2024, 3, 1), date(2024, 3, 6))


def test_days_already_generated_are_skipped(two_days):
    summary = _run(two_days, datetime(2024, 3, 4, 13, 0), date(2024, 3, 5))
    assert summary.days_generated == 0 and summary.days_skipped == 2
    assert summary.total_records == 0


def test_other_config_is_refused(two_days, tmp_path):
    other = config_in(tmp_path, seed=7)
    with pytest.raises(StateMismatchError, match="master"):
        _run(other, date(2024, 3, 6), date(2024, 3, 6))


def test_existing_table_with_wrong_columns(two_days):
    con = duckdb.connect(two_days.paths.duckdb)
    con.execute("ALTER TABLE fact_store_ops RENAME COLUMN operation_type TO op")
    con.close()
    with pytest.raises(SchemaMismatchError, match="operation_type"):
        FactDataGenerator(two_days)


def test_reset_facts_keeps_dims_and_allows_a_new_first_day(two_days):
    gen = FactDataGenerator(two_days)
    gen.reset_facts()
    gen.close()
    summary = _run(two_days, date(2024, 6, 1), date(2024, 6, 1))
    assert summary.days_generated == 1 and summary.total_records > 0


@pytest.mark.parametrize("with_facts", [False, True])
def test_version_1_database_is_refused(tmp_path, with_facts):
    config = config_in(tmp_path)
    if with_facts:
        generate(config, date(2024, 3, 4), date(2024, 3, 4))
    else:
        master = MasterDataGenerator(config)
        master.generate_all()
        master.close()
    con = duckdb.connect(config.paths.duckdb)
    con.execute("UPDATE gen_metadata SET value = '1.0' WHERE key = 'schema_version'")
    before = con.execute("SELECT count(*) FROM information_schema.tables").fetchone()
    con.close()
    # Master data alone is refused too: version 2 homes every truck at a DC.
    with pytest.raises(StateMismatchError, match=r"'1\.0'.*master --force"):
        _run(config, date(2024, 3, 5), date(2024, 3, 5))
    gen = FactDataGenerator(config)
    gen.reset_facts()
    gen.close()
    with pytest.raises(StateMismatchError, match="master --force"):
        _run(config, date(2024, 3, 5), date(2024, 3, 5))
    con = duckdb.connect(config.paths.duckdb)  # the refused calls wrote nothing
    assert con.execute("SELECT count(*) FROM information_schema.tables "
                       "WHERE table_name LIKE 'fact_%'").fetchone() == (0,)
    if not with_facts:
        assert con.execute("SELECT count(*) FROM information_schema.tables").fetchone() == before
    con.close()
    master = MasterDataGenerator(config)
    master.generate_all(force=True)
    master.close()
    assert _run(config, date(2024, 3, 5), date(2024, 3, 5)).days_generated == 1
