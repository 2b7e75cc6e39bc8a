"""Pieces of the process-pool tests: static inputs whose chosen unit-day misbehaves inside a
worker process, and the processes a run leaves behind.

:class:`FaultyStatic` is pickled to the workers like the real static inputs (this module is
importable there: workers get the test process's ``sys.path``), so the fault happens in a real
worker process, and the test acts on it from outside (SIGKILL, cancellation).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

from retail_datagen.generators.fact_generators.day_types import DayResult
from retail_datagen.generators.fact_generators.unit_day import StaticInputs


class _FaultyDay:
    """A unit's daily pipeline that hangs or raises on one day."""

    def __init__(self, simulation: Any, static: FaultyStatic) -> None:
        self._simulation, self._static = simulation, static

    def _generate_day(self, day: date, state: Any) -> DayResult:
        static = self._static
        if day == static.fault_day:
            if static.fault == "raise":
                raise RuntimeError("injected unit-day failure")
            # The worker announces itself, then stays mid-day until it is killed.
            Path(static.marker).write_text(str(os.getpid()))
            time.sleep(120)
        return self._simulation._generate_day(day, state)


@dataclass
class FaultyStatic(StaticInputs):
    """Static inputs whose unit ``fault_unit`` hangs (``fault="hang"``: writes the worker's
    pid to ``marker``, then sleeps) or raises (``"raise"``) on ``fault_day``; every worker
    appends its pid to ``marker + ".pids"`` for each unit-day it runs."""

    fault_unit: int = 1
    fault_day: date | None = None
    fault: str = "hang"
    marker: str = ""

    @classmethod
    def of(cls, static: StaticInputs, **fault: Any) -> FaultyStatic:
        base = {f.name: getattr(static, f.name) for f in fields(StaticInputs)
                if f.name != "_simulations"}
        return cls(**base, **fault)

    def simulation(self, unit: int) -> Any:
        with open(self.marker + ".pids", "a", encoding="utf-8") as pids:
            pids.write(f"{os.getpid()}\n")
        simulation = super().simulation(unit)
        return _FaultyDay(simulation, self) if unit == self.fault_unit else simulation


def worker_pids(marker: Path) -> set[int]:
    """The pids of the workers that ran a unit-day of a :class:`FaultyStatic` run."""
    path = Path(f"{marker}.pids")
    return {int(line) for line in path.read_text().split()} if path.exists() else set()


def _parents() -> dict[int, int]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Field 4 (after the parenthesised command, which may hold spaces) is the ppid.
            out[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (children, their children, ...)."""
    parents = _parents()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until_ended(pids: set[int], timeout_s: float = 20.0) -> set[int]:
    """Wait for every process of ``pids`` to end; those still running after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = {pid for pid in pids if running(pid)}
        if not alive:
            return alive
        time.sleep(0.05)
    return {pid for pid in pids if running(pid)}
