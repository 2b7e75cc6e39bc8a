"""Faults during generation into a real PostgreSQL server: whole days remain, and continuing
(the same object, a new object, a new process) ends with the rows of an uninterrupted run.

Each scenario writes into a copy of a schema holding the master data; the content hashes are
compared with those of an uninterrupted run into DuckDB (the two backends hold the same rows).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from conftest import config_in
from fault_fixtures import (
    BEFORE_FAULT,
    FAULT_DAY,
    HASHED,
    Hashes,
    check_target_whole_days,
    continue_in_new_process,
    inside_write,
    kill_when,
    master_db,  # noqa: F401 - fixture (reference_hashes uses it)
    reference_hashes,  # noqa: F401 - fixture
)
from pg_fixtures import Schemas, backend_killer, pg_hashes, pg_schemas  # noqa: F401
from retail_datagen.db.sql_engine import SqlTarget
from retail_datagen.errors import GenerationError
from retail_datagen.generators.fact_generators import FactDataGenerator
from retail_datagen.generators.master_generator import MasterDataGenerator
from test_faults import (
    SCENARIOS,
    SIGKILL_IN_TRANSACTION,
    _run,
    child_process,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
SHARED = ("exception generating day k", "exception writing before COMMIT",
          "exception writing after COMMIT", "cancel awaiting the write before COMMIT",
          "SIGINT inside the write transaction")
TERMINATED = "pg_terminate_backend inside the write transaction"


@pytest.fixture(scope="module")
def master_schema(pg_schemas: Schemas, tmp_path_factory) -> Iterator[str]:  # noqa: F811
    name, url = pg_schemas.new("master")
    with MasterDataGenerator(config_in(tmp_path_factory.mktemp("pg-master")), url) as gen:
        gen.generate_all()
    return name


def _terminated_mid_day(schemas: Schemas):
    kill = backend_killer(schemas.admin)

    def scenario(gen: FactDataGenerator) -> date | None:
        inside_write(gen, FAULT_DAY, lambda: kill(
            gen._target.fetchall("SELECT pg_backend_pid()")[0][0]))
        with pytest.raises(GenerationError, match=f"writing {FAULT_DAY}"):
            _run(gen)
        return BEFORE_FAULT
    return scenario


def _continue_with_a_new_object(url: str, tmp_path: Path) -> None:
    gen = FactDataGenerator(config_in(tmp_path), url)
    try:
        _run(gen)
    finally:
        gen.close()


def _check_whole_days(url: str, last_day: date | None) -> None:
    target = SqlTarget.open(url)
    try:
        check_target_whole_days(target, last_day)
    finally:
        target.close()


@pytest.mark.parametrize("name", [*SHARED, TERMINATED])
def test_pg_fault_leaves_whole_days_and_continuations_end_identical(
        name: str, pg_schemas: Schemas, master_schema: str,  # noqa: F811
        reference_hashes: Hashes, tmp_path: Path) -> None:  # noqa: F811
    schema, url = pg_schemas.clone(master_schema, "same")
    scenario = _terminated_mid_day(pg_schemas) if name == TERMINATED else SCENARIOS[name]
    gen = FactDataGenerator(config_in(tmp_path), url)
    try:
        last_day = scenario(gen)
        check_target_whole_days(gen._target, last_day)
        for attr in ("_generate_day", "_write_day", "_write_state"):
            gen.__dict__.pop(attr, None)
        _, other = pg_schemas.clone(schema, "new")
        _run(gen)
    finally:
        gen.close()
    assert pg_hashes(url, HASHED) == reference_hashes
    _check_whole_days(other, last_day)
    _continue_with_a_new_object(other, tmp_path)
    assert pg_hashes(other, HASHED) == reference_hashes


def test_pg_sigkill_inside_the_write_transaction(
        pg_schemas: Schemas, master_schema: str,  # noqa: F811
        reference_hashes: Hashes, tmp_path: Path) -> None:  # noqa: F811
    schema, url = pg_schemas.clone(master_schema, "killed")
    kill_when(child_process(tmp_path, SIGKILL_IN_TRANSACTION, url), "in-transaction")
    _check_whole_days(url, BEFORE_FAULT)
    _, other = pg_schemas.clone(schema, "new")
    _continue_with_a_new_object(url, tmp_path)
    assert pg_hashes(url, HASHED) == reference_hashes
    continue_in_new_process(tmp_path, session=other)
    assert pg_hashes(other, HASHED) == reference_hashes
