"""The in-process executor (sharding.md §6): a range generated unit by unit writes the same
tables, outbox and state as the whole network generated at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from conftest import TEST_WEEK, config_in, generate
from db_hash import table_hashes
from retail_datagen.db import schema
from retail_datagen.generators.fact_generators import FactDataGenerator
from retail_datagen.generators.fact_generators.simulation import DaySimulation

STATE_TABLES = ("streaming_outbox", *schema.STATE_TABLES)


def _all_hashes(path: Path) -> dict[str, str]:
    hashes = table_hashes(path)
    con = duckdb.connect(str(path), read_only=True)
    try:
        for name in STATE_TABLES:
            if name in ("gen_watermark", "gen_day_log"):
                continue
            row = con.execute(
                f'SELECT count(*), md5(coalesce(string_agg(CAST(t AS VARCHAR), chr(10) '
                f'ORDER BY CAST(t AS VARCHAR)), \'\')) FROM "{name}" t').fetchone()
            hashes[name] = f"{row[0]}:{row[1]}"
    finally:
        con.close()
    return hashes


def _by_units(folder: Path, start, end, unit_days: list, monkeypatch) -> None:
    """Generate ``start..end`` with a fresh generator (so state is reloaded from the
    database), unit by unit, recording each unit-day's unit."""
    gen = FactDataGenerator(config_in(folder))
    unit_day = DaySimulation._generate_day

    def one_unit_day(sim, day, state):
        unit_days.append((day, sim._unit))
        return unit_day(sim, day, state)

    monkeypatch.setattr(DaySimulation, "_generate_day", one_unit_day)
    gen.run_by_units()
    try:
        asyncio.run(gen.generate_historical_data(start, end, validate=False,
                                                 publish_to_outbox=True))
    finally:
        gen.close()
        monkeypatch.setattr(DaySimulation, "_generate_day", unit_day)


@pytest.fixture(scope="module")
def network_week(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("network")
    generate(config_in(folder), *TEST_WEEK, outbox=True, executor="network")
    return folder / "retail.duckdb"


def test_unit_by_unit_equals_the_whole_network(tmp_path: Path, network_week: Path, monkeypatch):
    first, last = TEST_WEEK
    folder = tmp_path / "units"
    folder.mkdir()
    # The same master data; the facts come from two calls, the second resuming from the
    # state tables.
    (folder / "retail.duckdb").write_bytes(network_week.read_bytes())
    gen = FactDataGenerator(config_in(folder))
    gen.reset_facts()
    gen.close()
    middle = first + timedelta(days=3)
    unit_days: list = []
    _by_units(folder, first, middle, unit_days, monkeypatch)
    _by_units(folder, middle + timedelta(days=1), last, unit_days, monkeypatch)

    # Every day ran once per unit, largest unit first (the test config: DC 1 holds 4 of the
    # 6 stores, DC 2 holds 2, the network unit none).
    days = (last - first).days + 1
    assert unit_days == [(first + timedelta(days=d), u) for d in range(days) for u in (1, 2, 0)]
    expected, actual = _all_hashes(network_week), _all_hashes(folder / "retail.duckdb")
    assert set(expected) == set(actual)
    differ = [name for name in expected if expected[name] != actual[name]]
    assert not differ, differ
    assert int(actual["streaming_outbox"].split(":")[0]) > 0
    assert int(actual["fact_marketing"].split(":")[0]) > 0
