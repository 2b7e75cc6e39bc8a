"""The Spark executor (sharding.md §4–§6) on real Spark ``local[N]``: the same lake, byte for
byte, as the local executors, whatever the cores, task slots, retries or a killed driver."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

import spark_fixtures
from conftest import TEST_WEEK, config_in, generate
from db_hash import lake_hashes, table_hashes
from retail_datagen.config.settings import create_default_config
from retail_datagen.errors import ConfigError, GenerationError
from retail_datagen.lake import generate_lake, lake_watermark
from retail_datagen.lake.layout import METADATA_FILE, state_dir
from retail_datagen.lake.spark import FAULT_ENV, generate_lake_spark

spark_sessions = spark_fixtures.spark_sessions  # the session-scoped fixture
require_spark = spark_fixtures.require_spark
STARTER_DAYS = (date(2024, 3, 4), date(2024, 3, 6))
SCRIPT = Path(sys.executable).with_name("retail-datagen")


# -- helpers ------------------------------------------------------------------------------------
def folder_digest(out: Path) -> dict[str, str]:
    """Every file under ``out`` (relative path → md5 of its bytes)."""
    return {str(p.relative_to(out)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


# -- shared inputs ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def week_config(generated_week: Path, tmp_path_factory: pytest.TempPathFactory):
    """The test config over a copy of the shared week database (master data for the lakes)."""
    folder = tmp_path_factory.mktemp("spark-week")
    shutil.copy(generated_week, folder / "retail.duckdb")
    return config_in(folder)


@pytest.fixture(scope="module")
def week_lakes(week_config, tmp_path_factory) -> dict[str, Path]:
    """Lakes of the test week written by every executor; Spark runs filled in by the tests."""
    folder = tmp_path_factory.mktemp("lakes")
    lakes = {"local": folder / "local", "pool": folder / "pool"}
    generate_lake(week_config, lakes["local"], *TEST_WEEK)
    generate_lake(week_config, lakes["pool"], *TEST_WEEK, workers=2)
    return lakes


@pytest.fixture(scope="module")
def week_reference(week_lakes, generated_week) -> tuple[dict[str, str], dict[str, str]]:
    """The in-process lake's files and the DuckDB target's table hashes."""
    return folder_digest(week_lakes["local"]), table_hashes(generated_week)


# -- the same lake from every executor ----------------------------------------------------------
def test_local_executors_agree_with_the_duckdb_target(week_lakes, week_reference):
    files, db = week_reference
    assert folder_digest(week_lakes["pool"]) == files
    assert lake_hashes(week_lakes["local"]) == db


@pytest.mark.parametrize(("master", "partitions"), [("local[1]", 1), ("local[2]", 3),
                                                    ("local[4]", 2)])
def test_spark_writes_the_same_lake(spark_sessions, week_config, week_lakes, week_reference,
                                    tmp_path, master, partitions):
    spark = spark_sessions.get(master)
    out = tmp_path / "lake"
    summary = generate_lake_spark(spark, week_config, out, *TEST_WEEK, partitions=partitions)
    files, db = week_reference
    assert folder_digest(out) == files
    assert lake_hashes(out) == db
    assert summary.partitions == partitions
    assert summary.watermark == TEST_WEEK[1]
    assert summary.total_records == sum(pq.read_metadata(out / name).num_rows
                                        for name in files if name.startswith("fact_"))
    assert sorted(summary.unit_seconds) == sorted(summary.unit_cpu_seconds) == [0, 1, 2]
    assert all(t > 0 for t in summary.unit_cpu_seconds.values())


def test_tasks_carry_the_static_inputs_by_broadcast(spark_sessions, week_config, tmp_path):
    from pyspark import cloudpickle

    from retail_datagen.lake import prepare_lake
    from retail_datagen.lake.spark import _unit_task

    spark = spark_sessions.get("local[4]")
    plan = prepare_lake(week_config, tmp_path / "lake", *TEST_WEEK)
    static = spark.sparkContext.broadcast(plan.static)
    try:
        task = _unit_task(static, str(plan.out), plan.start, plan.end, plan.units, 2)
        # What each task ships is a handle: the inputs themselves travel once per worker.
        # (Pickled in another thread: pickling a broadcast registers it, per thread, for the
        # next job that thread submits, and this one is destroyed below.)
        with ThreadPoolExecutor(1) as thread:
            shipped = thread.submit(cloudpickle.dumps, task).result()
        assert len(shipped) < 20_000 < len(cloudpickle.dumps(plan.static))
    finally:
        static.destroy()


def test_spark_refuses_zero_partitions_and_urls(spark_sessions, week_config, tmp_path,
                                                monkeypatch):
    spark = spark_sessions.get("local[4]")
    with pytest.raises(ConfigError, match="partitions: must be >= 1"):
        generate_lake_spark(spark, week_config, tmp_path / "lake", *TEST_WEEK, partitions=0)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="is a URL"):
        generate_lake_spark(spark, week_config, "s3://bucket/lake", *TEST_WEEK)
    assert list(tmp_path.iterdir()) == []


def test_a_range_split_into_spark_runs_equals_one_run(spark_sessions, week_config,
                                                      week_reference, tmp_path):
    spark = spark_sessions.get("local[4]")
    out = tmp_path / "lake"
    middle = TEST_WEEK[0] + timedelta(days=2)
    generate_lake_spark(spark, week_config, out, TEST_WEEK[0], middle)
    assert lake_watermark(out) == middle
    summary = generate_lake_spark(spark, week_config, out, middle + timedelta(days=1),
                                  TEST_WEEK[1])
    assert folder_digest(out) == week_reference[0]
    assert set(summary.manifest["date"].to_pylist()) == {
        middle + timedelta(days=i) for i in range(1, 5)}


def test_a_failing_unit_fails_the_run_naming_its_cause(spark_sessions, week_config, tmp_path):
    spark = spark_sessions.get("local[4]")
    out = tmp_path / "lake"
    first = TEST_WEEK[0]
    generate_lake_spark(spark, week_config, out, first, first)
    # Unit 1's state after the first day is damaged: the next run cannot continue it.
    state_dir(out, 1, first).joinpath("gen_state_inventory.parquet").write_bytes(b"not parquet")
    with pytest.raises(GenerationError, match=r"the Spark job failed: .*ArrowInvalid: .*Parquet"):
        generate_lake_spark(spark, week_config, out, first + timedelta(days=1), TEST_WEEK[1])


def test_starter_days_on_spark_equal_the_pool_lake_and_the_duckdb_target(spark_sessions, tmp_path_factory):
    folder = tmp_path_factory.mktemp("starter")
    data = create_default_config().model_dump(mode="json", by_alias=True)
    data["paths"] = {"dict": str(folder / "dictionaries"), "master": str(folder / "master"),
                     "facts": str(folder / "facts"), "duckdb": str(folder / "retail.duckdb")}
    config = type(create_default_config())(**data)
    generate(config, *STARTER_DAYS)
    spark = spark_sessions.get("local[4]")
    summary = generate_lake_spark(spark, config, folder / "lake", *STARTER_DAYS)
    assert lake_hashes(folder / "lake") == table_hashes(folder / "retail.duckdb")
    assert summary.partitions == config.volume.dcs + 1
    # The local process pool writes the same files, byte for byte.
    generate_lake(config, folder / "pool", *STARTER_DAYS, workers=2)
    assert folder_digest(folder / "pool") == folder_digest(folder / "lake")


# -- reading the lake back with Spark -----------------------------------------------------------
def test_the_lake_reads_back_with_spark(spark_sessions, week_lakes, generated_week):
    from pyspark.sql import types as T

    spark = spark_sessions.get("local[4]")
    out = week_lakes["local"]
    receipts = spark.read.parquet(str(out / "fact_receipts"))
    fields = {f.name: f.dataType for f in receipts.schema.fields}
    assert fields["date"] == T.DateType()
    assert fields["event_ts"] == T.TimestampNTZType()
    assert fields["total_amount"] == T.DecimalType(18, 2)
    con = duckdb.connect(str(generated_week), read_only=True)
    try:
        count, total, first_ts = con.execute(
            "SELECT count(*), sum(total_amount), min(event_ts) FROM fact_receipts").fetchone()
    finally:
        con.close()
    row = receipts.selectExpr("count(*) AS n", "sum(total_amount) AS total",
                              "min(event_ts) AS first_ts").first()
    assert (row.n, row.total, row.first_ts) == (count, total, first_ts)
    stores = spark.read.parquet(str(out / "dim_stores"))
    assert stores.count() == 6


# -- failures -----------------------------------------------------------------------------------
def test_a_task_killed_and_retried_changes_nothing(spark_sessions, week_config, week_reference,
                                                   tmp_path):
    # Two attempts per task; the first attempt of unit 1's task writes its first day, then its
    # Python worker dies.
    spark = spark_sessions.get("local[2,2]", **{f"spark.executorEnv.{FAULT_ENV}": "1:exit"})
    out = tmp_path / "lake"
    summary = generate_lake_spark(spark, week_config, out, *TEST_WEEK)
    assert folder_digest(out) == week_reference[0]
    # The retry continued from the day the dead attempt completed.
    unit_1_days = {d for d, u in zip(summary.manifest["date"].to_pylist(),
                                     summary.manifest["unit"].to_pylist(), strict=True) if u == 1}
    assert unit_1_days == {TEST_WEEK[0] + timedelta(days=i) for i in range(1, 7)}
    spark_sessions.stop()


def _cli(config_path: Path, out: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    args = [str(SCRIPT), "--config", str(config_path), "facts", "--engine", "spark",
            "--out", str(out), "--spark-master", "local[2]", "--no-progress",
            "--start", TEST_WEEK[0].isoformat(), "--end", TEST_WEEK[1].isoformat()]
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _descendants(root: int) -> set[int]:
    """The processes below ``root`` (the JVM, the PySpark daemon and its workers)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = (Path("/proc") / entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        found.update(children)
        frontier.extend(children)
    return found


def _wait_until_gone(pids: set[int], timeout: float) -> set[int]:
    """The processes of ``pids`` still alive after at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if _running(p)}
        time.sleep(0.2)
    return alive


def _running(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status waits to be read


def test_a_killed_driver_rerun_ends_with_the_same_folder(week_config, week_reference, tmp_path):
    require_spark()
    config_path = tmp_path / "config.json"
    week_config.to_file(config_path)
    out = tmp_path / "lake"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, FAULT_ENV: "1:hang"}
    child = _cli(config_path, out, env, tmp_path)
    first_day = state_dir(out, 1, TEST_WEEK[0])
    deadline = time.monotonic() + 180
    while not (first_day / "gen_state_pending_returns.parquet").is_file():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "unit 1 never wrote its first day"
        time.sleep(0.2)
    spark_processes = _descendants(child.pid)
    assert spark_processes, "the driver started no JVM"
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL
    # The JVM and its Python workers follow the driver (the hung task included).
    left = _wait_until_gone(spark_processes, 60)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "Spark processes outlived the killed driver by 60 s"
    assert (out / METADATA_FILE).is_file()
    assert lake_watermark(out) is None or lake_watermark(out) < TEST_WEEK[1]

    del env[FAULT_ENV]
    rerun = _cli(config_path, out, env, tmp_path)
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert "Spark tasks on local[2]" in stdout
    assert folder_digest(out) == week_reference[0]
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def test_engine_spark_needs_a_lake_folder(tmp_path):
    from typer.testing import CliRunner

    from retail_datagen.cli import app

    config_path = tmp_path / "config.json"
    config_in(tmp_path).to_file(config_path)
    result = CliRunner().invoke(app, ["--config", str(config_path), "facts", "--engine", "spark",
                                      "--end", TEST_WEEK[1].isoformat()])
    assert result.exit_code == 2
    assert "--engine spark writes a lake: give --out DIR" in result.output
    assert not (tmp_path / "retail.duckdb").exists()


def test_without_java_spark_tests_skip_but_fail_under_ci(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Java is not installed"):
        require_spark()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run under CI: Java"):
        require_spark()
