"""Benchmarks of the fact engine: rows per second and peak memory for named workloads.

    python benchmarks/bench.py --workload starter --days 7 --json

generates into a fresh temporary DuckDB file and prints one JSON line (or a table without
``--json``). Workloads: ``test`` (test config), ``starter`` (starter config) and ``wide``
(starter config with 250 stores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from retail_datagen.config.settings import create_default_config, create_test_config
from retail_datagen.generators.fact_generators import FactDataGenerator
from retail_datagen.generators.master_generator import MasterDataGenerator

WORKLOADS = ("test", "starter", "wide")
START = date(2024, 3, 4)


def workload_config(name: str, folder: Path):
    paths = {"dict": str(folder / "dictionaries"), "master": str(folder / "master"),
             "facts": str(folder / "facts"), "duckdb": str(folder / "bench.duckdb")}
    if name == "test":
        return create_test_config(paths=paths)
    data = create_default_config().model_dump(mode="json", by_alias=True)
    data["paths"] = paths
    if name == "wide":
        data["volume"]["stores"] = 250
    return type(create_default_config())(**data)


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(workload: str, days: int, outbox: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="retail-bench-") as tmp:
        config = workload_config(workload, Path(tmp))
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
    return {
        "workload": workload,
        "days": days,
        "fact_rows": summary.total_records,
        "fact_seconds": round(fact_seconds, 3),
        "rows_per_s": round(summary.total_records / fact_seconds),
        "master_seconds": round(master_seconds, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "outbox_events": summary.outbox_events,
        "tables": summary.facts_generated,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=WORKLOADS, default="starter")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--outbox", action="store_true", help="also write outbox events")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    result = run(args.workload, args.days, args.outbox)
    if args.json:
        print(json.dumps(result))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['workload']}, {result['days']} days")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("fact_rows", "fact_seconds", "rows_per_s", "master_seconds", "peak_rss_mb"):
        table.add_row(key, f"{result[key]:,}")
    for name, rows in result["tables"].items():
        table.add_row(f"  {name}", f"{rows:,}")
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
