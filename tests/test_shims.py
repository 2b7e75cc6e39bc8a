"""Public names of the fact engine, its compatibility import paths, models and convenience API."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import threading
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
from retail_datagen.generators.fact_generators import core as core_module

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


# --- generate_historical_facts ---------------------------------------------------------------


class _Calls:
    def __init__(self) -> None:
        self.master_generated = 0
        self.generate_args: tuple | None = None
        self.loop_thread: threading.Thread | None = None


@pytest.fixture
def fake_engine(monkeypatch):
    """Stand-ins for the config loader, master generator and fact generator."""
    from retail_datagen.config.models import RetailConfig

    calls = _Calls()
    config = object()
    summary = FactGenerationSummary((datetime(2024, 1, 1), datetime(2024, 1, 2)), {}, 0, {}, 0.0, 0)

    class FakeMaster:
        exists = False

        def __init__(self, cfg):
            assert cfg is config

        def master_data_exists(self):
            return FakeMaster.exists

        def generate_all(self):
            calls.master_generated += 1
            return {}

    class FakeFacts:
        def __init__(self, cfg):
            assert cfg is config

        async def generate_historical_data(self, start, end, *, validate):
            calls.generate_args = (start, end, validate)
            calls.loop_thread = threading.current_thread()
            return summary

    master_module = types.ModuleType("retail_datagen.generators.master_generator")
    master_module.MasterDataGenerator = FakeMaster
    monkeypatch.setitem(sys.modules, master_module.__name__, master_module)
    monkeypatch.setattr(RetailConfig, "from_file", classmethod(lambda cls, path: config))
    monkeypatch.setattr(core_module, "FactDataGenerator", FakeFacts)
    return calls, summary, FakeMaster


def test_generate_historical_facts_without_a_running_loop(fake_engine):
    calls, summary, _ = fake_engine
    result = generate_historical_facts("config.json", date(2024, 1, 1), date(2024, 1, 2))
    assert result is summary
    assert calls.master_generated == 1
    assert calls.generate_args == (date(2024, 1, 1), date(2024, 1, 2), True)
    assert calls.loop_thread is threading.main_thread()


def test_generate_historical_facts_skips_existing_master_data(fake_engine):
    calls, _, fake_master = fake_engine
    fake_master.exists = True
    generate_historical_facts("config.json", date(2024, 1, 1), date(2024, 1, 1))
    assert calls.master_generated == 0


async def test_generate_historical_facts_inside_a_running_loop(fake_engine):
    calls, summary, _ = fake_engine
    running = asyncio.get_running_loop()
    result = generate_historical_facts("config.json", date(2024, 1, 1), date(2024, 1, 2))
    assert result is summary
    assert calls.loop_thread is not threading.current_thread()
    assert not running.is_closed()
