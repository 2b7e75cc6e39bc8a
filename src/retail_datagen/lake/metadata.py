"""``<out>/_metadata.json``: what a lake was generated from (sharding.md §5).

It is written (temporary name + rename) before any unit runs, and every later call must bring
the same values: the schema version, the config (fingerprint and ``config_data``), the master
data it was generated for, the included tables, the outbox choice and the versions of the
libraries that shape the bytes. Only ``first_day`` comes from the first call.
"""

from __future__ import annotations

import json
import os
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from retail_datagen.config.models import RetailConfig
from retail_datagen.db import schema
from retail_datagen.errors import StateMismatchError
from retail_datagen.lake.layout import METADATA_FILE
from retail_datagen.lake.writer import temporary_path

#: Packages whose versions decide the bytes of the files.
VERSIONED_PACKAGES: tuple[str, ...] = ("retail-datagen", "numpy", "pyarrow")


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def library_versions() -> dict[str, str]:
    return {name: _package_version(name) for name in VERSIONED_PACKAGES}


def lake_metadata(config: RetailConfig, master_generated_for: str | None, first_day: date,
                  included_tables: frozenset[str], outbox: bool) -> dict[str, Any]:
    """The metadata a call on ``config`` writes (or must find)."""
    return {
        "schema_version": schema.SCHEMA_VERSION,
        "config_fingerprint": config.fingerprint(),
        "config_data": config.config_data(),
        "master_generated_for": master_generated_for,
        "first_day": first_day.isoformat(),
        "included_tables": sorted(included_tables),
        "outbox": bool(outbox),
        "library_versions": library_versions(),
    }


def read_metadata(out: Path) -> dict[str, Any] | None:
    """The lake's metadata, or None when ``out`` holds no ``_metadata.json``."""
    path = out / METADATA_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise StateMismatchError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise StateMismatchError(f"{path} does not hold a JSON object")
    return data


def check_metadata(found: dict[str, Any], wanted: dict[str, Any], out: Path) -> None:
    """Raise ``StateMismatchError`` naming every value that differs (``first_day`` aside)."""
    if found.get("schema_version") != wanted["schema_version"]:
        raise StateMismatchError(
            f"the lake {out} was written by schema version {found.get('schema_version')!r}, "
            f"not {wanted['schema_version']!r}; write a new lake into an empty folder")
    differ = [key for key in wanted if key != "first_day" and found.get(key) != wanted[key]]
    if differ:
        details = "; ".join(f"{key}: lake has {found.get(key)!r}, this call {wanted[key]!r}"
                            for key in differ if key not in ("config_data",))
        raise StateMismatchError(
            f"the lake {out} was generated with other values ({', '.join(differ)}): "
            f"{details}. Use the original config and options, or an empty folder")


def write_metadata(out: Path, data: dict[str, Any]) -> None:
    """Write ``_metadata.json`` under a temporary name and rename it into place."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / METADATA_FILE
    tmp = temporary_path(path)
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def first_day_of(data: dict[str, Any]) -> date:
    return date.fromisoformat(data["first_day"])


__all__ = ["check_metadata", "first_day_of", "lake_metadata", "library_versions",
           "read_metadata", "write_metadata"]
