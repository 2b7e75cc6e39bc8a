"""Where everything lives in a lake folder (sharding.md §5), and the progress it records.

::

    <out>/_metadata.json
    <out>/<dim table>/part-u000.parquet
    <out>/<db table>/date=YYYY-MM-DD/part-u<UUU>.parquet      one per (table, unit-day) with rows
    <out>/_state/u<UUU>/gen_initial_inventory.parquet          the unit's reorder points
    <out>/_state/u<UUU>/YYYY-MM-DD/<gen_state_* table>.parquet  the unit's state after that day

A state folder is complete when it holds every state file (``STATE_TABLES``); the files are
written after the unit-day's table files, so a complete state folder for day D means every
table file of the unit up to D is in place. A unit's last complete day is its latest complete
state folder; the lake's watermark is the smallest of them over all units. Folders before the
watermark are needed by nothing once every unit has passed them (:func:`stale_state_dirs`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from retail_datagen.db import state_schema

METADATA_FILE = "_metadata.json"
STATE_DIR = "_state"
#: The state tables of a unit after each day (the initial inventory is written once).
STATE_TABLES: tuple[str, ...] = tuple(
    name for name in state_schema.STATE_TABLES if name.startswith("gen_state_"))
INITIAL_INVENTORY = "gen_initial_inventory"


def part_name(unit: int) -> str:
    return f"part-u{unit:03d}.parquet"


def table_file(out: Path, table: str, day: date, unit: int) -> Path:
    """The file of one (table, unit-day); ``table`` is a database table name."""
    return out / table / f"date={day.isoformat()}" / part_name(unit)


def dim_file(out: Path, table: str) -> Path:
    return out / table / part_name(0)


def unit_state_root(out: Path, unit: int) -> Path:
    return out / STATE_DIR / f"u{unit:03d}"


def state_dir(out: Path, unit: int, day: date) -> Path:
    return unit_state_root(out, unit) / day.isoformat()


def state_file(out: Path, unit: int, day: date, table: str) -> Path:
    return state_dir(out, unit, day) / f"{table}.parquet"


def initial_inventory_file(out: Path, unit: int) -> Path:
    return unit_state_root(out, unit) / f"{INITIAL_INVENTORY}.parquet"


def _is_complete(folder: Path) -> bool:
    return all((folder / f"{t}.parquet").is_file() for t in STATE_TABLES)


def state_days(out: Path, unit: int) -> list[tuple[date, Path]]:
    """The unit's state folders (complete or not), latest first."""
    root = unit_state_root(out, unit)
    if not root.is_dir():
        return []
    days = []
    for folder in root.iterdir():
        try:
            days.append((date.fromisoformat(folder.name), folder))
        except ValueError:  # the initial inventory, or a temporary file
            continue
    return sorted(days, reverse=True)


def last_complete_day(out: Path, unit: int) -> date | None:
    """The unit's latest complete state folder, or None when it has none."""
    for day, folder in state_days(out, unit):
        if _is_complete(folder):
            return day
    return None


def stale_state_dirs(out: Path, unit: int, watermark: date) -> list[Path]:
    """The unit's state folders before ``watermark``: no rerun or reader needs them."""
    return [folder for day, folder in state_days(out, unit) if day < watermark]


def lake_units(out: Path) -> list[int]:
    """Every unit of the lake: the network unit 0, then each DC in dc_id order."""
    dcs = pq.read_table(dim_file(out, "dim_distribution_centers"), columns=["dc_id"])
    return [0, *sorted(dcs.column("dc_id").to_pylist())]


__all__ = [
    "INITIAL_INVENTORY", "METADATA_FILE", "STATE_DIR", "STATE_TABLES", "dim_file",
    "initial_inventory_file", "lake_units", "last_complete_day", "part_name",
    "stale_state_dirs", "state_days", "state_dir", "state_file", "table_file",
    "unit_state_root",
]
