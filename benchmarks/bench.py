"""Benchmarks of the fact engine: rows per second and peak memory for named workloads.

    python benchmarks/bench.py --workload starter --days 7 --json

generates into a fresh temporary DuckDB file and prints one JSON line (or a table without
``--json``). Workloads: ``test`` (test config), ``starter`` (starter config), ``wide``
(starter config with 250 stores) and ``chain2000`` (2,000 stores, 100 DCs, 4,000,000
customers, 10,000 products). ``--workers N`` sets ``performance.max_workers``, the number of
generation processes of the process-pool executor; ``peak_rss_mb_total`` sums the resident
memory of this process and all its descendants (the fork server and the workers), sampled.
``largest_unit_share`` is the share of the fact rows that the largest unit generated, the
bound on the speed-up from more workers.
``--engine spark --out DIR [--spark-master local[N]]`` runs the Spark executor into a new lake
folder instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

from retail_datagen.config.settings import create_default_config, create_test_config
from retail_datagen.generators.fact_generators import FactDataGenerator
from retail_datagen.generators.master_generator import MasterDataGenerator

WORKLOADS = ("test", "starter", "wide", "chain2000")
CHAIN2000 = {"stores": 2_000, "dcs": 100, "total_geographies": 400,
             "total_customers": 4_000_000, "total_products": 10_000,
             # The starter fleet per store (1.74) and online orders per customer.
             "refrigerated_trucks": 1_400, "non_refrigerated_trucks": 2_100,
             "online_orders_per_day": 6_480}
START = date(2024, 3, 4)


def workload_config(name: str, folder: Path, workers: int | None = None):
    paths = {"dict": str(folder / "dictionaries"), "master": str(folder / "master"),
             "facts": str(folder / "facts"), "duckdb": str(folder / "bench.duckdb")}
    performance = {"max_workers": workers}
    if name == "test":
        return create_test_config(paths=paths, performance=performance)
    data = create_default_config().model_dump(mode="json", by_alias=True)
    data["paths"] = paths
    data["performance"].update(performance)
    if name == "wide":
        data["volume"]["stores"] = 250
    if name == "chain2000":
        data["volume"].update(CHAIN2000)
    return type(create_default_config())(**data)


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _tree_rss_kib(root: int) -> int:
    """Resident KiB of ``root`` and all its descendants, from /proc (0 where unavailable)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid and c not in tree]
        tree.update(children)
        frontier.extend(children)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total


class TreeMemory:
    """Samples the resident memory of this process and its children; ``peak_mb`` is the
    largest total seen (and never less than this process's own peak)."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self._interval = interval_s
        self._peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._peak_kib = max(self._peak_kib, _tree_rss_kib(os.getpid()))

    def __enter__(self) -> TreeMemory:
        if os.path.isdir("/proc"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def peak_mb(self) -> float:
        return max(self._peak_kib / 1024, peak_rss_mb())


def run(workload: str, days: int, outbox: bool = False, workers: int | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="retail-bench-") as tmp, TreeMemory() as memory:
        config = workload_config(workload, Path(tmp), workers)
        started = time.perf_counter()
        with MasterDataGenerator(config) as master:
            master.generate_all()
        master_seconds = time.perf_counter() - started
        gen = FactDataGenerator(config)
        started = time.perf_counter()
        summary = asyncio.run(gen.generate_historical_data(
            START, START + timedelta(days=days - 1), validate=False,
            publish_to_outbox=outbox))
        fact_seconds = time.perf_counter() - started
        gen.close()
        unit, unit_share = largest_unit(Path(config.paths.duckdb))
    return {
        "workload": workload,
        "days": days,
        "fact_rows": summary.total_records,
        "fact_seconds": round(fact_seconds, 3),
        "rows_per_s": round(summary.total_records / fact_seconds),
        "master_seconds": round(master_seconds, 3),
        "workers": config.performance.get_max_workers(),
        "peak_rss_mb_total": round(memory.peak_mb, 1),
        "peak_rss_mb": round(memory.peak_mb, 1),
        "outbox_events": summary.outbox_events,
        "largest_unit": unit,
        "largest_unit_share": round(unit_share, 4),
        "tables": summary.facts_generated,
    }


def largest_unit(path: Path) -> tuple[int, float]:
    """The unit with the most fact rows, and its share of them.

    Read from the unit part of the DSID keys (``id // 10**8 % 1000``), so over the tables
    keyed by one integer DSID column (inventory transactions, BLE pings, zone changes,
    stockouts, ...: most rows of a day).
    """
    import duckdb

    from retail_datagen.db import schema

    con = duckdb.connect(str(path), read_only=True)
    try:
        parts = []
        for name in schema.FACT_TABLE_DB_NAMES.values():
            key = schema.primary_key(name)
            kind = con.execute("SELECT data_type FROM information_schema.columns WHERE "
                               "table_name = ? AND column_name = ?", [name, key[0]]).fetchone()
            if len(key) == 1 and kind and kind[0] == "BIGINT":
                parts.append(f'SELECT ("{key[0]}" // 100000000) % 1000 AS u FROM "{name}"')
        rows = con.execute(f"SELECT u, count(*) AS n FROM ({' UNION ALL '.join(parts)}) "
                           "GROUP BY u ORDER BY n DESC, u").fetchall()
    finally:
        con.close()
    total = sum(n for _, n in rows)
    return (int(rows[0][0]), rows[0][1] / total) if total else (0, 0.0)


def run_spark(workload: str, days: int, out: Path, master: str, outbox: bool = False,
              partitions: int | None = None, conf: dict[str, str] | None = None) -> dict:
    """The Spark executor writing a lake into the new folder ``out``, master data in a
    temporary DuckDB file. ``largest_unit_seconds`` is the longest unit's run time in its task,
    the bound on the wall time however many cores run the job."""
    from retail_datagen.lake.spark import generate_lake_spark, spark_session

    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"--out {out}: the folder must be empty or missing")
    with tempfile.TemporaryDirectory(prefix="retail-bench-") as tmp, TreeMemory() as memory:
        config = workload_config(workload, Path(tmp))
        started = time.perf_counter()
        with MasterDataGenerator(config) as master_gen:
            master_gen.generate_all()
        master_seconds = time.perf_counter() - started
        spark = spark_session(master, app_name=f"retail-datagen-bench-{workload}", conf=conf)
        try:
            started = time.perf_counter()
            summary = generate_lake_spark(spark, config, out, START,
                                          START + timedelta(days=days - 1),
                                          partitions=partitions, outbox=outbox)
            fact_seconds = time.perf_counter() - started
            cores = spark.sparkContext.defaultParallelism
        finally:
            spark.stop()
    largest = max(summary.unit_seconds, key=summary.unit_seconds.get)
    return {
        "workload": workload,
        "days": days,
        "engine": "spark",
        "spark_master": master,
        "cores": cores,
        "partitions": summary.partitions,
        "units": len(summary.unit_seconds),
        "fact_rows": summary.total_records,
        "fact_seconds": round(fact_seconds, 3),
        "rows_per_s": round(summary.total_records / fact_seconds),
        "rows_per_s_per_core": round(summary.total_records / fact_seconds / cores),
        "largest_unit": largest,
        "largest_unit_seconds": round(summary.unit_seconds[largest], 3),
        "unit_seconds_total": round(sum(summary.unit_seconds.values()), 3),
        # One core's throughput inside the units (no Spark or start-up overhead), by wall
        # time and by CPU time (which other load on the machine does not inflate).
        "unit_rows_per_core_s": round(summary.total_records
                                      / max(sum(summary.unit_seconds.values()), 1e-9)),
        "unit_cpu_seconds_total": round(sum(summary.unit_cpu_seconds.values()), 3),
        "unit_rows_per_cpu_s": round(summary.total_records
                                     / max(sum(summary.unit_cpu_seconds.values()), 1e-9)),
        "largest_unit_cpu_seconds": round(summary.unit_cpu_seconds[largest], 3),
        "unit_seconds": {u: round(t, 3) for u, t in summary.unit_seconds.items()},
        "unit_cpu_seconds": {u: round(t, 3) for u, t in summary.unit_cpu_seconds.items()},
        "master_seconds": round(master_seconds, 3),
        "peak_rss_mb_total": round(memory.peak_mb, 1),
        "outbox_events": summary.outbox_events,
        "tables": summary.facts_generated,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=WORKLOADS, default="starter")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--outbox", action="store_true", help="also write outbox events")
    parser.add_argument("--workers", type=int, default=None,
                        help="performance.max_workers (default: the CPU count)")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--engine", choices=("local", "spark"), default="local")
    parser.add_argument("--out", type=Path, help="the lake folder of --engine spark (new or empty)")
    parser.add_argument("--spark-master", default="local[2]", help="Spark master URL")
    parser.add_argument("--partitions", type=int, default=None,
                        help="Spark task slots (default: one per unit)")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a Spark setting, e.g. spark.driver.memory=4g (repeatable)")
    args = parser.parse_args(argv)
    if args.engine == "spark":
        if args.out is None:
            parser.error("--engine spark needs --out DIR")
        conf = dict(item.split("=", 1) for item in args.spark_conf)
        result = run_spark(args.workload, args.days, args.out, args.spark_master, args.outbox,
                           args.partitions, conf)
    else:
        result = run(args.workload, args.days, args.outbox, args.workers)
    if args.json:
        print(json.dumps(result))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['workload']}, {result['days']} days")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("fact_rows", "fact_seconds", "rows_per_s", "master_seconds", "workers",
                "peak_rss_mb_total", "largest_unit", "largest_unit_share", "cores",
                "largest_unit_seconds"):
        if key in result:
            table.add_row(key, f"{result[key]:,}")
    for name, rows in result["tables"].items():
        table.add_row(f"  {name}", f"{rows:,}")
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
