"""Public names of the fact engine, its compatibility import paths, models and convenience API."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import types
from datetime import date, datetime
from pathlib import Path

import pytest

import retail_datagen.generators.fact_generator as compat_shim
import retail_datagen.generators.fact_generators as package
from retail_datagen.generators.fact_generators import (
    FactGenerationSummary,
    MasterTableSpec,
    generate_historical_facts,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
PUBLIC_NAMES = [
    "FactDataGenerator",
    "HourlyProgressTracker",
    "FactGenerationSummary",
    "MasterTableSpec",
    "generate_historical_facts",
]


@pytest.fixture
def root_shim(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    import fact_generator_shim

    return fact_generator_shim


def public_globals(module: types.ModuleType) -> set[str]:
    return {name for name in vars(module) if not name.startswith("_")}


def test_the_three_all_lists_are_the_five_public_names(root_shim):
    assert package.__all__ == PUBLIC_NAMES
    assert compat_shim.__all__ == PUBLIC_NAMES
    assert root_shim.__all__ == PUBLIC_NAMES


def test_shims_expose_the_same_objects_and_define_nothing_else(root_shim):
    from retail_datagen.generators.fact_generator import FactDataGenerator

    assert FactDataGenerator is package.FactDataGenerator
    assert root_shim.FactDataGenerator is package.FactDataGenerator
    for name in PUBLIC_NAMES:
        assert getattr(compat_shim, name) is getattr(package, name)
        assert getattr(root_shim, name) is getattr(package, name)
    assert public_globals(compat_shim) == set(PUBLIC_NAMES)
    assert public_globals(root_shim) == set(PUBLIC_NAMES)


def test_root_shim_finds_src_when_the_package_is_not_installed(tmp_path):
    src = REPO_ROOT / "src"
    script = f"""
import importlib.util, os, sys
src = {str(src)!r}
sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != os.path.realpath(src)]
assert importlib.util.find_spec("retail_datagen") is None, "package still importable"
sys.path.insert(0, {str(REPO_ROOT)!r})
import fact_generator_shim
assert sys.path[0] == src, sys.path[:2]
from retail_datagen.generators.fact_generators import FactDataGenerator
assert fact_generator_shim.FactDataGenerator is FactDataGenerator
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_root_shim_leaves_sys_path_alone_when_the_package_is_importable(tmp_path):
    script = f"""
import sys
before = list(sys.path)
sys.path.insert(0, {str(REPO_ROOT)!r})
import fact_generator_shim
assert sys.path[1:] == before, "sys.path changed"
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_master_table_spec_is_deprecated_and_warns_at_the_caller():
    with pytest.warns(DeprecationWarning, match="MasterTableSpec is deprecated") as record:
        spec = MasterTableSpec("stores", "stores.csv", dict)
    assert record[0].filename == __file__
    assert (spec.dtype, spec.row_adapter) == (None, None)


def test_fact_generation_summary_fields_and_defaults():
    fields = {f.name: f for f in dataclasses.fields(FactGenerationSummary)}
    assert list(fields) == [
        "date_range", "facts_generated", "total_records", "validation_results",
        "generation_time_seconds", "partitions_created", "days_generated", "days_skipped",
        "outbox_events",
    ]
    summary = FactGenerationSummary(
        date_range=(datetime(2024, 1, 1), datetime(2024, 1, 2)),
        facts_generated={"receipts": 3},
        total_records=3,
        validation_results={"skipped": True},
        generation_time_seconds=0.5,
        partitions_created=1,
    )
    assert (summary.days_generated, summary.days_skipped, summary.outbox_events) == (0, 0, 0)


# --- generate_historical_facts and the usage example, on real databases ----------------------

_USAGE = """
import asyncio
from datetime import datetime

from retail_datagen.config.models import RetailConfig
from retail_datagen.generators.fact_generators import FactDataGenerator


async def main():
    config = RetailConfig.from_file("config.json")
    generator = FactDataGenerator(config)

    # Load master data
    generator.load_master_data_from_duckdb()

    # Generate historical facts
    summary = await generator.generate_historical_data(
        start_date=datetime(2024, 1, 1),
        end_date=datetime(2024, 1, 31),
    )

    print(f"Generated {summary.total_records} fact records")


asyncio.run(main())
"""


def _write_config(folder):
    from conftest import config_in

    path = folder / "config.json"
    config_in(folder).to_file(path)
    return path


def _row_count(db) -> int:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM fact_receipts").fetchone()[0]
    finally:
        con.close()


@pytest.mark.slow
def test_generate_historical_facts_without_a_running_loop(tmp_path):
    path = _write_config(tmp_path)
    summary = generate_historical_facts(path, date(2024, 3, 4), date(2024, 3, 5))
    assert summary.days_generated == 2 and summary.total_records > 0
    assert summary.validation_results["passed"] is True
    assert _row_count(tmp_path / "retail.duckdb") == summary.facts_generated["receipts"]


@pytest.mark.slow
async def test_generate_historical_facts_inside_a_running_loop(tmp_path):
    running = asyncio.get_running_loop()
    path = _write_config(tmp_path)
    summary = generate_historical_facts(path, date(2024, 3, 4), date(2024, 3, 4))
    assert summary.days_generated == 1 and summary.facts_generated["receipts"] > 0
    assert not running.is_closed()
    again = generate_historical_facts(path, date(2024, 3, 4), date(2024, 3, 4))
    assert again.days_skipped == 1 and again.total_records == 0


@pytest.mark.slow
def test_the_design_card_usage_example_runs_as_written(tmp_path):
    import subprocess

    from retail_datagen.generators.master_generator import MasterDataGenerator

    path = _write_config(tmp_path)
    from retail_datagen.config.models import RetailConfig

    with MasterDataGenerator(RetailConfig.from_file(path)) as master:
        master.generate_all()
    script = tmp_path / "usage.py"
    script.write_text(_USAGE)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    reported = int(done.stdout.split()[1])
    assert reported > 0
    assert _row_count(tmp_path / "retail.duckdb") > 0
