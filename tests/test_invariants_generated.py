"""The invariant catalogue on generated data: clean runs pass, and each corruption of a
freshly generated database fails exactly the checks it declares."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from conftest import PLAIN_DAYS, TEST_WEEK, config_in, generate
from invariant_adversarial import ADVERSARIAL
from retail_datagen.validation.invariants import run_invariants

pytestmark = pytest.mark.slow

# W-01 judges plain days only (no holiday effect or overlay): the test week has none.
PLAIN_ONLY = {"W-01"}


@pytest.fixture(scope="module")
def plain_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plain")
    generate(config_in(folder), date(2024, 3, 4), date(2024, 3, 8))
    return folder / "retail.duckdb"


@pytest.mark.parametrize("seed", [42, 7])
@pytest.mark.parametrize("days", [TEST_WEEK, PLAIN_DAYS], ids=["week", "plain"])
def test_generated_data_validates(tmp_path: Path, seed: int, days: tuple[date, date]) -> None:
    summary = generate(config_in(tmp_path, seed=seed), *days, validate=True)
    results = summary.validation_results
    assert results["error_count"] == 0, results["errors"]
    assert results["passed"] is True
    assert set(results["checks"]) >= set(ADVERSARIAL)


def _corrupt_and_check(source: Path, tmp_path: Path, check_id: str):
    target = tmp_path / "corrupt.duckdb"
    shutil.copy(source, target)
    corruption, expected = ADVERSARIAL[check_id]
    con = duckdb.connect(str(target))
    for statement in (corruption,) if isinstance(corruption, str) else corruption:
        con.execute(statement)
    con.close()
    return run_invariants(target), expected


@pytest.mark.parametrize("check_id", sorted(set(ADVERSARIAL) - PLAIN_ONLY))
def test_corrupting_generated_data_fails_exactly_the_declared_checks(
        generated_week: Path, tmp_path: Path, check_id: str) -> None:
    report, expected = _corrupt_and_check(generated_week, tmp_path, check_id)
    failing = {c.id for c in report.checks if not c.passed}
    assert failing == set(expected)


@pytest.mark.parametrize("check_id", sorted(PLAIN_ONLY))
def test_corrupting_plain_days_fails_exactly_the_declared_checks(
        plain_days: Path, tmp_path: Path, check_id: str) -> None:
    report, expected = _corrupt_and_check(plain_days, tmp_path, check_id)
    failing = {c.id for c in report.checks if not c.passed}
    assert failing == set(expected)


def test_a_capped_connection_gets_the_full_memory_budget_back_after_the_catalogue(
        generated_week: Path) -> None:
    # The generator caps its own connection's memory for writing and validates on it: the
    # catalogue must not run inside that cap, and must leave the caller's setting as it was.
    con = duckdb.connect(str(generated_week), read_only=True)
    try:
        con.execute("SET memory_limit = '4MiB'")
        capped = con.execute("SELECT current_setting('memory_limit')").fetchone()
        report = run_invariants(con)
        assert report.to_dict()["error_count"] == 0, report.to_dict()["errors"]
        assert con.execute("SELECT current_setting('memory_limit')").fetchone() == capped
    finally:
        con.close()
