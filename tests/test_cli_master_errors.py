"""`retail-datagen master` on bad input: the exit code of each error family, and nothing
written when it fails."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from conftest import config_in

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "retail_datagen.cli"]


def _run(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "--config", str(config), *args], capture_output=True,
                          text=True, timeout=300)


def _config(tmp_path: Path, **volume) -> Path:
    config = config_in(tmp_path)
    data = config.model_dump(mode="json", by_alias=True)
    data["volume"].update(volume)
    path = tmp_path / "config.json"
    type(config)(**data).to_file(path)
    return path


def _tables(db: Path) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables")
                .fetchall()]
    finally:
        con.close()


def test_more_geographies_than_the_data_package_exits_4_and_writes_nothing(tmp_path):
    config = _config(tmp_path, total_geographies=5000)
    done = _run(config, "master")
    assert done.returncode == 4
    assert done.stderr.startswith("error: ") and "total_geographies" in done.stderr
    db = tmp_path / "retail.duckdb"
    assert not db.exists() or _tables(db) == []


def test_master_twice_without_force_exits_4_and_keeps_the_data(tmp_path):
    config = _config(tmp_path)
    assert _run(config, "master").returncode == 0
    before = duckdb.connect(str(tmp_path / "retail.duckdb"), read_only=True)
    first = before.execute("SELECT md5(string_agg(CAST(t AS VARCHAR), '|' ORDER BY store_id)) "
                           "FROM dim_stores t").fetchone()
    before.close()
    again = _run(config, "master")
    assert again.returncode == 4 and "--force" in again.stderr
    after = duckdb.connect(str(tmp_path / "retail.duckdb"), read_only=True)
    assert after.execute("SELECT md5(string_agg(CAST(t AS VARCHAR), '|' ORDER BY store_id)) "
                         "FROM dim_stores t").fetchone() == first
    after.close()


def test_database_locked_by_another_process_exits_3(tmp_path):
    config = _config(tmp_path)
    db = tmp_path / "retail.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time\n"
         f"c = duckdb.connect({str(db)!r}); print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        started = time.monotonic()
        done = _run(config, "master")
        assert done.returncode == 3
        assert str(db) in done.stderr and "locked" in done.stderr
        assert time.monotonic() - started < 60
    finally:
        holder.kill()
        holder.wait()
    assert _tables(db) == []


def test_the_repository_config_is_the_starter_config():
    from retail_datagen.config.models import RetailConfig
    from retail_datagen.config.settings import create_default_config

    repo_config = Path(__file__).resolve().parents[1] / "config.json"
    assert RetailConfig.from_file(repo_config) == create_default_config()
