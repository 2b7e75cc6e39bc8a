"""The Parquet lake (sharding.md §5–§6): the same tables as a database, from any executor, any
split of the range and any kill; refused when it belongs to something else; checked by the
invariant catalogue; read back by DuckDB, pyarrow and pandas with the declared types."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import PLAIN_DAYS, TEST_WEEK, config_in, generate
from db_hash import ALL_TABLES, lake_hashes, table_hashes
from pg_fixtures import Schemas, pg_schemas  # noqa: F401
from retail_datagen import cli
from retail_datagen.cli import app
from retail_datagen.config.models import RetailConfig
from retail_datagen.config.settings import STARTER_CONFIG
from retail_datagen.db import schema
from retail_datagen.errors import DateRangeError, StateMismatchError
from retail_datagen.generators.master_generator import MasterDataGenerator
from retail_datagen.lake import generate_lake, lake_watermark, prepare_lake, validate_lake
from retail_datagen.lake.writer import is_temporary, temporary_path, write_parquet

FIRST, LAST = TEST_WEEK


@dataclass(frozen=True)
class Lake:
    config: RetailConfig
    folder: Path  # holds retail.duckdb (master data) and the lake
    path: Path


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes())
                                       .hexdigest()) for p in root.rglob("*") if p.is_file()}


def _same_files(expected: Path, actual: Path) -> list[str]:
    a, b = _files(expected), _files(actual)
    return sorted(name for name in a.keys() | b.keys() if a.get(name) != b.get(name))


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory, generated_week: Path) -> Lake:
    """The test week as a lake, in-process and in one call, beside a copy of its master data."""
    folder = tmp_path_factory.mktemp("lake_week")
    shutil.copy(generated_week, folder / "retail.duckdb")
    config = config_in(folder)
    generate_lake(config, folder / "lake", *TEST_WEEK)
    return Lake(config, folder, folder / "lake")


@pytest.fixture
def master_copy(week: Lake, tmp_path: Path) -> RetailConfig:
    """The week's config over a private copy of its database (for writers of the lake)."""
    shutil.copy(week.folder / "retail.duckdb", tmp_path / "retail.duckdb")
    return config_in(tmp_path)


# -- the same tables as a database ------------------------------------------------------------
def test_the_lake_holds_the_tables_of_the_duckdb_target(week: Lake, generated_week: Path):
    expected, actual = table_hashes(generated_week), lake_hashes(week.path)
    assert [n for n in ALL_TABLES if expected[n] != actual[n]] == []
    assert all(int(actual[n].split(":")[0]) > 0 for n in ALL_TABLES)
    assert lake_watermark(week.path) == LAST


def test_two_worker_processes_write_the_same_bytes(week: Lake, master_copy: RetailConfig,
                                                   tmp_path: Path):
    summary = generate_lake(master_copy, tmp_path / "lake", *TEST_WEEK, workers=2)
    assert summary.watermark == LAST and summary.unit_days == 3 * 7
    assert summary.files == len(list((tmp_path / "lake").glob("fact_*/date=*/*.parquet")))
    assert _same_files(week.path, tmp_path / "lake") == []


def test_a_range_in_two_calls_writes_the_same_bytes(week: Lake, master_copy: RetailConfig,
                                                    tmp_path: Path):
    middle = FIRST + timedelta(days=2)
    generate_lake(master_copy, tmp_path / "lake", FIRST, middle)
    assert lake_watermark(tmp_path / "lake") == middle
    # Overlapping the written days is allowed: they are skipped.
    summary = generate_lake(master_copy, tmp_path / "lake", FIRST, LAST)
    assert summary.unit_days == 3 * 4
    assert _same_files(week.path, tmp_path / "lake") == []


def test_the_outbox_goes_to_the_lake_as_its_own_table(tmp_path: Path):
    config = config_in(tmp_path)
    generate(config, *PLAIN_DAYS, outbox=True)  # master data, and the database to compare
    generate_lake(config, tmp_path / "lake", *PLAIN_DAYS, outbox=True)
    names = (*ALL_TABLES, schema.OUTBOX_TABLE)
    expected, actual = table_hashes(tmp_path / "retail.duckdb", names), lake_hashes(
        tmp_path / "lake", names)
    assert [n for n in names if expected[n] != actual[n]] == []
    assert int(actual[schema.OUTBOX_TABLE].split(":")[0]) > 0


# -- a killed run -------------------------------------------------------------------------------
def test_a_killed_run_resumes_into_the_same_folder(week: Lake, master_copy: RetailConfig,
                                                   tmp_path: Path):
    config_file = tmp_path / "config.json"
    master_copy.to_file(config_file)
    lake = tmp_path / "lake"
    command = [sys.executable, "-m", "retail_datagen.cli", "--config", str(config_file),
               "facts", "--end", LAST.isoformat(), "--out", str(lake), "--no-validate",
               "--workers", "2"]
    env = {k: v for k, v in os.environ.items() if k != cli.DATABASE_URL_ENV}
    with (tmp_path / "stderr.txt").open("w") as stderr:
        run = subprocess.Popen([*command, "--start", FIRST.isoformat()], env=env,
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=stderr)
    # Units 1 and 2 run side by side; kill the run (workers too) once unit 1 is mid-way.
    mid_way = lake / "_state" / "u001" / (FIRST + timedelta(days=3)).isoformat()
    deadline = time.monotonic() + 300
    while not mid_way.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert run.poll() is None, (tmp_path / "stderr.txt").read_text()
    os.killpg(run.pid, signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    assert mid_way.exists() and (lake_watermark(lake) is None or lake_watermark(lake) < LAST)
    for path in lake.rglob("*.parquet"):  # a final name always holds a whole file
        pq.read_metadata(path)
    # What a kill inside a write leaves (the kill above may or may not have hit one).
    left = temporary_path(lake / "fact_receipts" / f"date={LAST}" / "part-u001.parquet")
    left.parent.mkdir(parents=True, exist_ok=True)
    left.write_bytes(b"PAR1 cut short")

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert [p for p in lake.rglob("*") if is_temporary(p)] == []
    assert _same_files(week.path, lake) == []


# -- refused calls ------------------------------------------------------------------------------
def test_another_config_schema_or_range_is_refused_and_writes_nothing(
        week: Lake, master_copy: RetailConfig, tmp_path: Path):
    lake = tmp_path / "lake"
    shutil.copytree(week.path, lake)
    before = _snapshot(lake)
    other = config_in(tmp_path, seed=week.config.seed + 1)
    calls = [
        (StateMismatchError, lambda: prepare_lake(other, lake, FIRST, LAST)),
        (StateMismatchError, lambda: prepare_lake(master_copy, lake, FIRST, LAST, outbox=True)),
        (StateMismatchError, lambda: prepare_lake(master_copy, lake, FIRST, LAST,
                                                  tables=["receipts"])),
        (DateRangeError, lambda: prepare_lake(master_copy, lake, LAST + timedelta(days=2),
                                              LAST + timedelta(days=3))),
        (DateRangeError, lambda: prepare_lake(master_copy, lake, FIRST - timedelta(days=1),
                                              LAST)),
    ]
    for error, call in calls:
        with pytest.raises(error):
            call()
        assert _snapshot(lake) == before

    meta_file = lake / "_metadata.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "schema_version": "1.0"}))
    before = _snapshot(lake)
    with pytest.raises(StateMismatchError, match="schema version"):
        generate_lake(master_copy, lake, FIRST, LAST + timedelta(days=1))
    assert _snapshot(lake) == before

    # A new lake over master data of another config: refused before anything is written.
    with pytest.raises(StateMismatchError, match="master data"):
        prepare_lake(other, tmp_path / "new", FIRST, LAST)
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


# -- validate and status -----------------------------------------------------------------------
def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _rewrite(path: Path, change) -> None:
    """Rewrite one lake file with pyarrow, the rows changed by ``change``."""
    table = pq.read_table(path)
    write_parquet(change(table), path, table.schema)


#: The checks that judge receipts against their lines, amounts and stock (the full catalogue
#: runs on the intact lake).
CAUGHT_BY = "INV-10,INV-13,INV-32"


def _failed(report_json: str) -> set[str]:
    checks = json.loads(report_json)["checks"]
    return {check_id for check_id, check in checks.items() if check["violations"]}


def test_validate_lake_passes_and_catches_a_removed_row_and_a_changed_value(
        week: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(cli.DATABASE_URL_ENV, raising=False)
    result = _invoke("validate", "--lake", str(week.path))
    assert result.exit_code == 0, result.output
    assert "0 errors" in result.stdout

    day = (FIRST + timedelta(days=2)).isoformat()
    removed = tmp_path / "removed"
    shutil.copytree(week.path, removed)
    lines = removed / "fact_receipt_lines" / f"date={day}" / "part-u001.parquet"
    _rewrite(lines, lambda t: t.slice(1))
    result = _invoke("validate", "--lake", str(removed), "--json", "--only", CAUGHT_BY)
    assert result.exit_code == 1
    assert _failed(result.stdout) == {"INV-13", "INV-32"}  # header ≠ lines; stock ≠ sales

    changed = tmp_path / "changed"
    shutil.copytree(week.path, changed)
    receipts = changed / "fact_receipts" / f"date={day}" / "part-u002.parquet"

    def more_tax(table: pa.Table) -> pa.Table:
        column = table.schema.get_field_index("tax_cents")
        tax = table.column(column).to_numpy().copy()
        tax[0] += 1
        return table.set_column(column, "tax_cents", pa.array(tax))

    _rewrite(receipts, more_tax)
    result = _invoke("validate", "--lake", str(changed), "--json", "--only", CAUGHT_BY)
    assert result.exit_code == 1
    assert _failed(result.stdout) == {"INV-10", "INV-13"}  # amount ≠ cents; header ≠ lines


def test_status_lake_shows_each_unit_and_the_watermark(week: Lake, tmp_path: Path):
    lake = tmp_path / "lake"
    shutil.copytree(week.path, lake)
    # Unit 2's latest state folder a day earlier: the watermark is that day.
    before = (LAST - timedelta(days=1)).isoformat()
    (lake / "_state" / "u002" / LAST.isoformat()).rename(lake / "_state" / "u002" / before)
    result = _invoke("status", "--lake", str(lake))
    assert result.exit_code == 0, result.output
    assert f"watermark: {FIRST}..{before} (6 days)" in result.stdout
    assert LAST.isoformat() in result.stdout and before in result.stdout


# -- readers and types --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def starter_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three days of the starter config, from two worker processes."""
    folder = tmp_path_factory.mktemp("lake_starter")
    data = copy.deepcopy(STARTER_CONFIG)
    data["paths"] = {"dict": str(folder / "dictionaries"), "master": str(folder / "master"),
                     "facts": str(folder / "facts"), "duckdb": str(folder / "retail.duckdb")}
    config = RetailConfig(**data)
    with MasterDataGenerator(config) as master:
        master.generate_all()
    generate_lake(config, folder / "lake", FIRST, FIRST + timedelta(days=2), workers=2)
    return folder / "lake"


@pytest.mark.slow
def test_the_starter_lake_passes_the_invariant_catalogue(starter_lake: Path):
    report = validate_lake(starter_lake)
    assert report.has_fact_rows
    assert report.errors == []


def _declared(name: str) -> pa.Schema:
    return schema.arrow_schema(name)


def test_files_hold_their_rows_in_key_order_without_a_date_column(week: Lake):
    files = list(week.path.glob("*/date=*/*.parquet"))
    assert files
    for path in files:
        name = path.parents[1].name
        table = pq.read_table(path)
        assert table.schema.equals(_declared(name)), path
        key = [(c, "ascending") for c in schema.primary_key(name)]
        assert table.equals(table.sort_by(key)), path
    for name in schema.DIM_TABLES:
        table = pq.read_table(week.path / name / "part-u000.parquet")
        assert table.schema.equals(_declared(name))


def _reads_back_with_the_declared_types(lake: Path) -> None:
    con = duckdb.connect()
    for name in schema.FACT_TABLE_DB_NAMES.values():
        folder = lake / name
        pattern = str(folder / "*" / "*.parquet")
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{pattern}', "
                                "hive_partitioning = true)").fetchall()
        assert [(r[0], r[1]) for r in described] == [*schema.duckdb_columns(name),
                                                     ("date", "DATE")]
        (rows,) = con.execute(f"SELECT count(*) FROM read_parquet('{pattern}', "
                              "hive_partitioning = true)").fetchone()

        dataset = ds.dataset(folder, format="parquet", partitioning="hive")
        fields = {f.name: f.type for f in dataset.schema}
        assert all(fields[f.name] == f.type for f in _declared(name)), name
        assert dataset.count_rows() == rows > 0

        frame = pd.read_parquet(folder)
        assert len(frame) == rows and "date" in frame.columns
        assert frame["event_ts"].dt.tz is None
    money = pd.read_parquet(lake / "fact_receipts", columns=["total_amount"])
    assert money["total_amount"].iloc[0].as_tuple().exponent == -2


def test_the_lake_reads_back_with_the_declared_types(week: Lake):
    _reads_back_with_the_declared_types(week.path)


@pytest.mark.slow
def test_the_starter_lake_reads_back_with_the_declared_types(starter_lake: Path):
    _reads_back_with_the_declared_types(starter_lake)


@pytest.mark.postgres
def test_master_data_in_postgresql_writes_the_same_lake(week: Lake, tmp_path: Path,
                                                        pg_schemas: Schemas):  # noqa: F811
    _, url = pg_schemas.new("lake")
    config = config_in(tmp_path)
    with MasterDataGenerator(config, url) as master:
        master.generate_all()
    second = FIRST + timedelta(days=1)
    generate_lake(config, tmp_path / "lake", FIRST, second, session=url)
    days = {f"date={d.isoformat()}" for d in (FIRST, second)}
    written = {name: data for name, data in _files(tmp_path / "lake").items()
               if not name.startswith("_") and (name.count("/") == 1
                                                or name.split("/")[1] in days)}
    expected = {name: data for name, data in _files(week.path).items() if name in written}
    assert len(written) > len(schema.DIM_TABLES) and written == expected
