"""Tests of the invariant catalogue (``retail_datagen.validation.invariants``).

The hand-built fixture (``invariant_fixtures``) is consistent, so it must pass every check. Each
entry of :data:`ADVERSARIAL` corrupts one row (or entity) with generic SQL that works on any
valid database, fixture or generated, and declares the exact set of checks that must then fail;
every other check must pass. PostgreSQL runs (marker ``postgres``) load the same fixture through
SQLAlchemy into a fresh schema.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest
from pydantic import BaseModel, ConfigDict, create_model
from sqlalchemy import Engine, create_engine, exc, text

import invariant_fixtures as fx
from invariant_adversarial import ADVERSARIAL, PROBES, expected_with_outbox
from retail_datagen.db import schema
from retail_datagen.db.fact_schema import FACT_TABLES
from retail_datagen.validation import checks_outbox, checks_sensors
from retail_datagen.validation.invariants import (
    CHECK_IDS,
    InvariantReport,
    run_invariants,
)

# The product specification lives in shared/spec beside the repository checkout.
SPEC = Path(os.environ.get(
    "RETAIL_DATAGEN_SPEC_DIR", Path(__file__).resolve().parents[2] / "shared" / "spec",
)) / "invariants.md"
REALISM = Path(__file__).resolve().parents[1] / "docs" / "realism.md"
# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _w01_judges_the_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fixture has two standard-store sales with a mean of 4.0 items (target 4.2 ± 15%), so
    # W-01 judges it once the sample-size floor is lowered.
    monkeypatch.setattr(checks_sensors, "W01_MIN_RECEIPTS", 1)


@pytest.fixture(scope="session")
def clean_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.build_duckdb(tmp_path_factory.mktemp("inv") / "clean.duckdb")


@pytest.fixture(scope="session")
def outbox_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.build_duckdb(tmp_path_factory.mktemp("inv") / "outbox.duckdb", outbox=True)


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copyfile(src, dst)
    return dst


def _corrupted(src: Path, tmp_path: Path, corruption: str | tuple[str, ...]) -> Path:
    path = _copy(src, tmp_path)
    con = duckdb.connect(str(path))
    try:
        fx.corrupt(con.execute, corruption)
    finally:
        con.close()
    return path


def _probe(path: Path, check_id: str) -> list[str]:
    if check_id not in PROBES:
        return []
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(PROBES[check_id]).fetchone()
    finally:
        con.close()
    assert row is not None and None not in row, check_id
    return [str(v) for v in row]


def _assert_sample_names(report: InvariantReport, check_id: str, values: list[str]) -> None:
    """Some sample row of the check holds every identifying value of the corrupted entity."""
    rows = [{str(v) for v in row.values()} for row in report.check(check_id).sample]
    assert any(set(values) <= row for row in rows), (values, report.check(check_id).sample)


def _assert_fails_exactly(report: InvariantReport, expected: frozenset[str]) -> None:
    failed = set(report.failed_ids)
    details = {c.id: (c.violations, c.error, c.sample[:2]) for c in report.checks if not c.passed}
    assert failed == set(expected), details
    for check_id in expected:
        result = report.check(check_id)
        assert result.violations >= 1 and result.sample, check_id
        assert not result.skipped


def _spec_ids() -> list[str]:
    # The catalogue is the spec's plus the checks of the calibrated flows in docs/realism.md.
    ids = []
    for doc in (SPEC, REALISM):
        for line in doc.read_text(encoding="utf-8").splitlines():
            if line.startswith("|"):
                ids += re.findall(r"^\|\s*(INV-\d\d|W-\d\d)\s*\|", line)
    return ids


# --- clean fixture ------------------------------------------------------------------------------


def test_clean_fixture_passes_every_check(clean_file: Path) -> None:
    report = run_invariants(clean_file)
    assert report.passed
    assert report.failed_ids == []
    assert report.errors == [] and report.warnings == []
    assert [c.id for c in report.checks] == list(CHECK_IDS)
    # Without outbox rows INV-54 has nothing to judge; everything else is judged.
    assert [c.id for c in report.checks if c.skipped] == ["INV-54"]


def test_clean_fixture_with_outbox_passes(outbox_file: Path) -> None:
    report = run_invariants(outbox_file)
    assert report.failed_ids == []
    assert not report.check("INV-54").skipped


def test_fixture_loaded_from_a_connection_is_the_same() -> None:
    con = duckdb.connect()
    fx.load_duckdb(con)
    report = run_invariants(con)
    assert report.failed_ids == []
    # The caller's connection stays usable.
    assert con.execute("SELECT count(*) FROM fact_receipts").fetchone() == (5,)


# --- adversarial --------------------------------------------------------------------------------


def test_every_spec_invariant_has_an_adversarial_test() -> None:
    if not SPEC.is_file():
        pytest.skip(f"spec not found at {SPEC}")
    ids = _spec_ids()
    assert len(ids) == len(set(ids)) == len(CHECK_IDS)
    assert sorted(ids) == sorted(CHECK_IDS)
    missing = sorted(set(ids) - set(ADVERSARIAL))
    assert not missing, f"no adversarial test for {missing}"


def test_adversarial_table_covers_the_catalogue() -> None:
    assert sorted(ADVERSARIAL) == sorted(CHECK_IDS)
    # W-01 has no entity: it judges a mean over many receipts.
    assert set(PROBES) == set(CHECK_IDS) - {"W-01"}
    for check_id, (_, expected) in ADVERSARIAL.items():
        assert check_id in expected and expected <= set(CHECK_IDS)


@pytest.mark.parametrize("check_id", sorted(ADVERSARIAL))
def test_adversarial(check_id: str, clean_file: Path, tmp_path: Path) -> None:
    corruption, expected = ADVERSARIAL[check_id]
    report = run_invariants(_corrupted(clean_file, tmp_path, corruption))
    _assert_fails_exactly(report, expected)
    _assert_sample_names(report, check_id, _probe(clean_file, check_id))
    assert report.passed == all(i.startswith("W-") for i in expected)


@pytest.mark.parametrize("check_id", sorted(ADVERSARIAL))
def test_adversarial_with_outbox(check_id: str, outbox_file: Path, tmp_path: Path) -> None:
    corruption, _ = ADVERSARIAL[check_id]
    report = run_invariants(_corrupted(outbox_file, tmp_path, corruption))
    _assert_fails_exactly(report, expected_with_outbox(check_id))
    _assert_sample_names(report, check_id, _probe(outbox_file, check_id))


# --- specific rules -------------------------------------------------------------------------------


def _fails_only(src: Path, tmp_path: Path, corruption: str | tuple[str, ...], *ids: str) -> None:
    _assert_fails_exactly(run_invariants(_corrupted(src, tmp_path, corruption)), frozenset(ids))


def test_store_with_a_nearer_dc(clean_file: Path, tmp_path: Path) -> None:
    # A second DC at store 1's own geography is nearer than DC 1 for store 1 only.
    _fails_only(clean_file, tmp_path,
                "INSERT INTO dim_distribution_centers VALUES (2, 'DC002', 'x', 1)", "INV-08")


def test_dc_tie_goes_to_the_lowest_id(clean_file: Path, tmp_path: Path) -> None:
    # DC 2 shares DC 1's site: a tie, which DC 1 (the lower id) wins, so nothing fails.
    _fails_only(clean_file, tmp_path,
                "INSERT INTO dim_distribution_centers VALUES (2, 'DC002', 'x', 3)")


def test_sale_returned_twice(clean_file: Path, tmp_path: Path) -> None:
    # A second RETURN header for S2, without lines or payment.
    columns = ", ".join(c.name for c in schema.table("fact_receipts").c if c.name != "receipt_id_ext")
    _fails_only(
        clean_file, tmp_path,
        f"INSERT INTO fact_receipts (receipt_id_ext, {columns}) SELECT 'RET2024030500002000002', "
        f"{columns} FROM fact_receipts WHERE receipt_id_ext = '{fx.R1}'",
        "INV-05", "INV-13", "INV-16", "INV-34",
    )


def test_return_line_not_matching_its_sale(clean_file: Path, tmp_path: Path) -> None:
    _fails_only(
        clean_file, tmp_path,
        f"UPDATE fact_receipt_lines SET tax_cents = tax_cents - 1, tax_amount = tax_amount - 0.01 "
        f"WHERE receipt_id_ext = '{fx.R1}' AND line_num = 1",
        "INV-12", "INV-13", "INV-34",
    )


def test_return_line_under_another_line_number(clean_file: Path, tmp_path: Path) -> None:
    # A partial return names each returned sale line by its number: a shifted number breaks it.
    _fails_only(
        clean_file, tmp_path,
        f"UPDATE fact_receipt_lines SET line_num = 7 WHERE receipt_id_ext = '{fx.R1}' "
        "AND line_num = 2",
        "INV-34",
    )


@pytest.mark.parametrize(
    "change",
    [
        "payment_method = 'DEBIT_CARD'",  # the retry must use another method
        "decline_reason = NULL",
        "attempt = 2",
        "payment_method = 'CASH'",
    ],
)
def test_declined_payment_rules(clean_file: Path, tmp_path: Path, change: str) -> None:
    _fails_only(clean_file, tmp_path,
                f"UPDATE fact_payments SET {change} WHERE transaction_id = 'TXN{fx.S1}-1'",
                "INV-16")


def test_zone_change_on_the_wrong_ping(clean_file: Path, tmp_path: Path) -> None:
    _fails_only(clean_file, tmp_path,
                "UPDATE fact_customer_zone_changes SET event_ts = event_ts + INTERVAL '1 second' "
                f"WHERE zone_change_id = {fx.dsid(fx.D1, 1)}", "INV-52")


def test_truck_double_booked(clean_file: Path, tmp_path: Path) -> None:
    # Leg 2 departs while truck 2 is still returning from leg 1.
    _fails_only(
        clean_file, tmp_path,
        (
            f"UPDATE fact_truck_moves SET departure_time = departure_time - INTERVAL '1 day', "
            f"eta = eta - INTERVAL '1 day', etd = etd - INTERVAL '1 day' "
            f"WHERE shipment_id = '{fx.LEG2}'",
            f"UPDATE gen_state_shipments SET etd = etd - INTERVAL '1 day' "
            f"WHERE shipment_id = '{fx.LEG2}'",
        ),
        "INV-41", "INV-43",
    )


def test_pool_truck_without_a_home_dc(clean_file: Path, tmp_path: Path) -> None:
    # Only SUPPLIER trucks may have no dc_id; truck 3 is an idle POOL truck.
    _fails_only(clean_file, tmp_path, "UPDATE dim_trucks SET dc_id = NULL WHERE truck_id = 3",
                "INV-06")


def test_supplier_truck_with_a_home_dc(clean_file: Path, tmp_path: Path) -> None:
    _fails_only(clean_file, tmp_path, "UPDATE dim_trucks SET dc_id = 1 WHERE truck_id = 5",
                "INV-06")


def test_dc_with_stores_and_no_refrigerated_truck(clean_file: Path, tmp_path: Path) -> None:
    # Truck 1 is DC 1's only refrigerated DC_FLEET or POOL truck and carries no leg.
    _fails_only(clean_file, tmp_path,
                "UPDATE dim_trucks SET refrigeration = false WHERE truck_id = 1", "INV-06")


def test_leg_on_a_truck_of_another_dc(clean_file: Path, tmp_path: Path) -> None:
    # DC 2 shares DC 1's site (no INV-08 tie issue); truck 2, which carries DC 1's legs, is
    # homed at DC 2: a POOL or DC_FLEET truck serves only its own DC.
    for kind in ("DC_FLEET", "POOL"):
        (tmp_path / kind).mkdir()
        _fails_only(clean_file, tmp_path / kind, (
            "INSERT INTO dim_distribution_centers VALUES (2, 'DC002', 'x', 3)",
            f"UPDATE dim_trucks SET dc_id = 2, truck_type = '{kind}' WHERE truck_id = 2",
        ), "INV-43")


def test_leg_on_a_pool_truck_of_its_dc(clean_file: Path, tmp_path: Path) -> None:
    _fails_only(clean_file, tmp_path,
                "UPDATE dim_trucks SET truck_type = 'POOL' WHERE truck_id = 2")


def test_reorder_priority_and_allocation(clean_file: Path, tmp_path: Path) -> None:
    _fails_only(clean_file, tmp_path,
                "UPDATE fact_reorders SET priority = 'HIGH' WHERE product_id = 7", "INV-35")


def test_online_tax_uses_the_customer_geography(clean_file: Path, tmp_path: Path) -> None:
    # O1 ships from the DC: its tax follows customer 1's home rate, not the store's.
    _fails_only(clean_file, tmp_path,
                "UPDATE dim_geographies SET tax_rate = 0.09 WHERE geography_id = 1",
                "INV-08", "INV-12")


# --- scope and filtered runs --------------------------------------------------------------------


def test_scope_limits_row_checks(
    clean_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One day holds too few sales for W-01 to judge.
    monkeypatch.setattr(checks_sensors, "W01_MIN_RECEIPTS", 500)
    # The foot traffic row broken on D1 is out of a D2-only scope.
    path = _corrupted(clean_file, tmp_path, ADVERSARIAL["INV-50"][0])
    assert run_invariants(path, fx.D2, fx.D2).failed_ids == []
    assert run_invariants(path, fx.D1, fx.D1).failed_ids == ["INV-50"]
    assert run_invariants(path, start=fx.D1).failed_ids == ["INV-50"]


def test_day_scope_keeps_context_whole(clean_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks_sensors, "W01_MIN_RECEIPTS", 500)
    # Judging D2 alone still reads S2 (D1) as the original of R1 and the D1 balances.
    report = run_invariants(clean_file, fx.D2, fx.D2)
    assert report.failed_ids == []
    assert not report.check("INV-34").skipped and not report.check("INV-30").skipped


def test_filtered_run_skips_checks_of_an_excluded_table(clean_file: Path, tmp_path: Path) -> None:
    others = ",".join(sorted(t for t in FACT_TABLES if t != "ble_pings"))
    path = _corrupted(clean_file, tmp_path, (
        "DELETE FROM fact_ble_pings",
        f"UPDATE gen_day_log SET included_tables = '{others}'",
    ))
    report = run_invariants(path)
    assert report.failed_ids == []
    assert report.check("INV-51").skipped and report.check("INV-52").skipped
    assert not report.check("INV-01").skipped and not report.check("INV-21").skipped


def test_filtered_day_excludes_entities_spanning_it(clean_file: Path, tmp_path: Path) -> None:
    # D2 without store txns: the D2 txns are gone, so series balances and state comparisons
    # cannot be judged, while D1 rows still are.
    others = ",".join(sorted(t for t in FACT_TABLES if t != "store_inventory_txn"))
    path = _corrupted(clean_file, tmp_path, (
        "DELETE FROM fact_store_inventory_txn WHERE event_ts >= TIMESTAMP '2024-03-05 00:00:00'",
        f"UPDATE gen_day_log SET included_tables = '{others}' WHERE day = DATE '2024-03-05'",
    ))
    report = run_invariants(path)
    assert report.failed_ids == []
    # The DC series are still judged, so only the store-table queries were skipped.
    assert not report.check("INV-30").skipped
    # A broken D1 store txn is still caught.
    more = tmp_path / "more"
    more.mkdir()
    assert run_invariants(_corrupted(path, more, ADVERSARIAL["INV-32"][0])).failed_ids == ["INV-32"]


def test_filtered_sale_day_skips_its_returns(
    clean_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checks_sensors, "W01_MIN_RECEIPTS", 500)
    drop_d1 = "DELETE FROM fact_receipts WHERE event_ts < TIMESTAMP '2024-03-05 00:00:00'"
    # Logged as written, the missing D1 headers break references, among them R1's original sale.
    broken = run_invariants(_corrupted(clean_file, tmp_path, drop_d1))
    assert set(broken.failed_ids) == {"INV-05", "INV-32", "W-02"}
    # 4 lines, 3 payments, the promotion of S1 and R1.
    assert broken.check("INV-05").violations == 9
    # Logged as excluded on D1, they are not judged, and neither is R1 (its sale day is out).
    others = ",".join(sorted(t for t in FACT_TABLES if t != "receipts"))
    report = run_invariants(_corrupted(clean_file, tmp_path, (
        drop_d1,
        f"UPDATE gen_day_log SET included_tables = '{others}' WHERE day = DATE '2024-03-04'",
    )))
    assert report.failed_ids == []
    assert not report.check("INV-34").skipped


def test_without_watermark_or_config(clean_file: Path, tmp_path: Path) -> None:
    path = _corrupted(clean_file, tmp_path, (
        "DELETE FROM gen_watermark",
        "DELETE FROM gen_metadata WHERE key = 'config_data'",
    ))
    report = run_invariants(path)
    assert report.failed_ids == []
    assert report.check("INV-20").skipped and report.check("W-01").skipped
    assert report.check("W-04").skipped
    inv53 = report.check("INV-53")
    assert not inv53.skipped and any("cost bounds" in n for n in inv53.notes)


def test_only_runs_the_named_checks(clean_file: Path) -> None:
    report = run_invariants(clean_file, only=["inv-01", "W-02"])
    assert [c.id for c in report.checks] == ["INV-01", "W-02"]
    with pytest.raises(ValueError, match="INV-99"):
        run_invariants(clean_file, only=["INV-99"])


def test_end_before_start_is_rejected(clean_file: Path) -> None:
    from retail_datagen.errors import DateRangeError

    with pytest.raises(DateRangeError):
        run_invariants(clean_file, date(2024, 3, 5), date(2024, 3, 4))


def test_a_failing_query_is_reported_not_raised(clean_file: Path, tmp_path: Path) -> None:
    path = _corrupted(clean_file, tmp_path, "ALTER TABLE fact_promotions DROP COLUMN product_ids")
    report = run_invariants(path, only=["INV-15", "INV-05"])
    inv15 = report.check("INV-15")
    assert not inv15.passed and inv15.error and "error" in inv15.sample[0]
    assert report.check("INV-05").passed
    assert "query failed" in report.errors[0]


# --- outbox -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("corruption", "rule"),
    [
        ("UPDATE streaming_outbox SET trace_id = (SELECT min(trace_id) FROM streaming_outbox) "
         "WHERE outbox_id = (SELECT max(outbox_id) FROM streaming_outbox)", "not unique"),
        ("UPDATE streaming_outbox SET message_type = 'receipt_returned' "
         "WHERE message_type = 'receipt_created' AND outbox_id = (SELECT min(outbox_id) "
         "FROM streaming_outbox WHERE message_type = 'receipt_created')", "status or type"),
        ("UPDATE streaming_outbox SET partition_key = '' "
         "WHERE outbox_id = (SELECT min(outbox_id) FROM streaming_outbox)", "partition_key"),
        ("UPDATE streaming_outbox SET payload = replace(payload, '\"trace_id\"', '\"trace\"') "
         "WHERE outbox_id = (SELECT min(outbox_id) FROM streaming_outbox)", "keys"),
        ("DELETE FROM streaming_outbox "
         "WHERE outbox_id = (SELECT max(outbox_id) FROM streaming_outbox)", "event count"),
    ],
)
def test_outbox_rules(outbox_file: Path, tmp_path: Path, corruption: str, rule: str) -> None:
    report = run_invariants(_corrupted(outbox_file, tmp_path, corruption))
    assert report.failed_ids == ["INV-54"]
    assert any(rule in str(row.get("rule")) for row in report.check("INV-54").sample)


_PY_TYPES = {"BigInteger": int, "Integer": int, "SmallInteger": int, "Boolean": bool}


def _payload_fields(logical: str) -> dict[str, tuple[object, object]]:
    fields: dict[str, tuple[object, object]] = {"trace_id": (str, ...)}
    for col in schema.table(logical).c:
        key = col.name[: -len("_ext")] if col.name.endswith("_id_ext") else col.name
        kind = _PY_TYPES.get(type(col.type).__name__, str)
        fields[key] = (kind | None, None) if col.nullable else (kind, ...)
    return fields


def _strict_models() -> dict[str, type[BaseModel]]:
    """Payload models built from the contract: typed integers, strings otherwise, no extras."""
    tables: dict[str, list[str]] = {}
    for logical, spec in checks_outbox.MESSAGE_TYPES.items():
        for mt in (spec,) if isinstance(spec, str) else spec[1].values():
            tables.setdefault(mt, []).append(logical)
    models: dict[str, type[BaseModel]] = {}
    for mt, logicals in tables.items():
        per_table = [_payload_fields(t) for t in logicals]
        fields = dict(per_table[0])
        # inventory_updated serves two tables: a key that either may lack is optional.
        for other in per_table[1:]:
            for key in set(fields) ^ set(other):
                kind = (fields.get(key) or other[key])[0]
                fields[key] = (kind | None, None)
        config = ConfigDict(extra="forbid")
        models[mt] = create_model(mt, __config__=config, **fields)  # type: ignore[call-overload]
    return models


def test_outbox_payloads_are_validated_by_their_models(
    outbox_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("retail_datagen.streaming.schemas")
    module.MESSAGE_MODELS = _strict_models()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "retail_datagen.streaming.schemas", module)
    assert run_invariants(outbox_file).failed_ids == []
    # The keys still match; only the model sees that the value has the wrong type.
    path = _corrupted(outbox_file, tmp_path,
                      "UPDATE streaming_outbox SET payload = replace(payload, "
                      "'\"cost_cents\": 17', '\"cost_cents\": \"seventeen\"') "
                      "WHERE message_type = 'ad_impression'")
    inv54 = run_invariants(path).check("INV-54")
    assert inv54.violations == 1
    assert inv54.sample[0]["rule"] == "payload fails its pydantic model"
    assert inv54.sample[0]["error"].startswith("cost_cents")


def test_missing_message_models_skip_only_that_subcheck(
    outbox_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "retail_datagen.streaming.schemas",
                        types.ModuleType("retail_datagen.streaming.schemas"))
    inv54 = run_invariants(outbox_file, only=["INV-54"]).check("INV-54")
    assert inv54.passed and not inv54.skipped
    assert any("MESSAGE_MODELS" in note for note in inv54.notes)


# --- report shape -------------------------------------------------------------------------------


def test_to_dict_shape(clean_file: Path, tmp_path: Path) -> None:
    path = _corrupted(clean_file, tmp_path, ADVERSARIAL["INV-12"][0])
    data = run_invariants(path).to_dict()
    assert set(data) == {"passed", "error_count", "warning_count", "errors", "warnings", "checks"}
    assert data["passed"] is False and data["error_count"] == 2 and data["warning_count"] == 0
    assert data["errors"][0].startswith("INV-12: Line tax (1 violation)")
    assert list(data["checks"]) == list(CHECK_IDS)
    for entry in data["checks"].values():
        assert set(entry) == {"name", "severity", "passed", "skipped", "violations", "sample"}
        assert entry["severity"] in ("error", "warning")
        assert len(entry["sample"]) <= 5
    assert data["checks"]["INV-54"] == {
        "name": "Outbox integrity", "severity": "error", "passed": True, "skipped": True,
        "violations": 0, "sample": [],
    }
    # Samples are JSON-friendly: timestamps, dates and decimals are strings.
    json.dumps(data)
    assert data["checks"]["INV-12"]["sample"][0]["receipt_id_ext"] == fx.S1


# --- performance --------------------------------------------------------------------------------


@pytest.mark.slow
def test_catalogue_runs_fast_on_a_week_of_test_config_volume(tmp_path: Path) -> None:
    """A 7-day database at test-config volume (≈5k receipts and 30k pings a day) in < 10 s."""
    con = duckdb.connect(str(tmp_path / "volume.duckdb"))
    fx.load_duckdb(con)
    _inflate(con, days=7, receipts_per_day=5000, pings_per_day=30000)
    began = time.perf_counter()
    report = run_invariants(con)
    elapsed = time.perf_counter() - began
    con.close()
    assert all(c.error is None for c in report.checks), report.errors
    assert elapsed < 10, elapsed


def _inflate(con: duckdb.DuckDBPyConnection, *, days: int, receipts_per_day: int,
             pings_per_day: int) -> None:
    """Append volume in the shape of generated data (values need not be consistent)."""
    n_r = days * receipts_per_day
    con.execute(f"""
        INSERT INTO fact_receipts SELECT 'RCPV' || lpad(CAST(i AS VARCHAR), 10, '0'), 'SALE',
            NULL, TIMESTAMP '2024-03-04 08:00:00' + INTERVAL (i % {days}) DAY
                + INTERVAL (i % 50000) SECOND, 1 + i % 2, 1 + i % 4, 3, 6,
            10.00, 1000, 0.00, 0, 10.00, 1000, 0.80, 80, 10.80, 1080, 'CASH'
        FROM range({n_r}) t(i)""")
    con.execute("""
        INSERT INTO fact_receipt_lines SELECT r.receipt_id_ext, k.n, r.event_ts, 1 + k.n, 2,
            1.67, 167, 0.00, 0, 3.33, 333, 0.27, 27, NULL
        FROM fact_receipts r CROSS JOIN range(1, 4) k(n) WHERE r.receipt_id_ext LIKE 'RCPV%'""")
    con.execute("""
        INSERT INTO fact_store_inventory_txn SELECT
            30000000000000000 + row_number() OVER (), l.event_ts, r.store_id, l.product_id,
            'SALE', -l.quantity, 100, l.receipt_id_ext
        FROM fact_receipt_lines l JOIN fact_receipts r USING (receipt_id_ext)
        WHERE l.receipt_id_ext LIKE 'RCPV%'""")
    con.execute("""
        INSERT INTO fact_payments SELECT 'TXN' || receipt_id_ext || '-1',
            event_ts + INTERVAL 2 SECOND, receipt_id_ext, NULL, store_id, customer_id, 'CASH', 1,
            'APPROVED', NULL, total_amount, total_cents, 2000
        FROM fact_receipts WHERE receipt_id_ext LIKE 'RCPV%'""")
    n_p = days * pings_per_day
    con.execute(f"""
        INSERT INTO fact_ble_pings SELECT 40000000000000000 + i,
            TIMESTAMP '2024-03-04 08:00:00' + INTERVAL (i % {days}) DAY
                + INTERVAL (i // 4 % 40000) SECOND,
            1 + i % 2, 'BEACON', CASE i % 3 WHEN 0 THEN 'ENTRANCE' WHEN 1 THEN 'GROCERY'
                ELSE 'CHECKOUT' END, 'ANON-V' || CAST(i // 6 AS VARCHAR), NULL,
            CAST(i // 6 AS INTEGER), -50
        FROM range({n_p}) t(i)""")
    con.execute(f"""
        INSERT INTO fact_customer_zone_changes SELECT 50000000000000000 + i,
            TIMESTAMP '2024-03-04 08:00:00' + INTERVAL (i % {days}) DAY
                + INTERVAL (i % 40000) SECOND, 1 + i % 2, 'ANON-V' || CAST(i AS VARCHAR), NULL,
            CAST(i AS INTEGER), 'ENTRANCE', 'GROCERY'
        FROM range({n_p // 4}) t(i)""")
    con.execute(f"""
        INSERT INTO fact_marketing SELECT 'IMPV' || CAST(i AS VARCHAR),
            TIMESTAMP '2024-03-04 00:00:00' + INTERVAL (i % {days}) DAY
                + INTERVAL (i % 86000) SECOND, 'CMP2024030401', 'seasonal_sale', 'CRV', 'EMAIL',
            'MOBILE', 'AD000001', NULL, 0.17, 17
        FROM range({days * 3000}) t(i)""")
    con.execute("UPDATE gen_watermark SET last_day = DATE '2024-03-10'")
    con.execute("""
        INSERT INTO gen_day_log SELECT DATE '2024-03-06' + CAST(i AS INTEGER), included_tables,
            outbox, row_count FROM gen_day_log CROSS JOIN range(5) t(i)
        WHERE day = DATE '2024-03-05'""")


# --- PostgreSQL ---------------------------------------------------------------------------------


def _pg_url() -> str:
    url = os.environ.get("RETAIL_DATAGEN_TEST_PG_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("RETAIL_DATAGEN_TEST_PG_URL is not set")
        pytest.skip("RETAIL_DATAGEN_TEST_PG_URL is not set")
    return url


@dataclass(frozen=True)
class PgSchema:
    """An engine whose search_path is a fresh schema holding the fixture."""

    engine: Engine
    schema: str


@pytest.fixture(scope="module")
def pg() -> Iterator[PgSchema]:
    url = _pg_url()
    name = f"inv_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    except exc.OperationalError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable: {error}")
    engine = create_engine(url, connect_args={"options": f"-csearch_path={name}"})
    try:
        with engine.begin() as conn:
            fx.load_sqlalchemy(conn, outbox=True)
        yield PgSchema(engine, name)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.mark.postgres
def test_postgres_clean_fixture_passes(pg: PgSchema) -> None:
    report = run_invariants(pg.engine)
    assert report.failed_ids == [], {c.id: c.sample for c in report.checks if not c.passed}
    assert not report.check("INV-54").skipped


@pytest.mark.postgres
def test_postgres_url_target(pg: PgSchema) -> None:
    url = pg.engine.url.update_query_dict({"options": f"-csearch_path={pg.schema}"})
    report = run_invariants(url.render_as_string(hide_password=False), only=["INV-13", "INV-54"])
    assert report.failed_ids == []
    assert not report.check("INV-54").skipped


# Corruptions PostgreSQL's declared keys refuse: there the database keeps the invariant.
PREVENTED_BY_PG_KEYS = frozenset({"INV-01", "INV-04"})


@pytest.mark.postgres
@pytest.mark.parametrize("check_id", sorted(ADVERSARIAL))
def test_postgres_adversarial(check_id: str, pg: PgSchema) -> None:
    corruption, _ = ADVERSARIAL[check_id]
    with pg.engine.connect() as conn:
        trans = conn.begin()
        try:
            probe = PROBES.get(check_id)
            values = ([str(v) for v in conn.exec_driver_sql(probe.replace("%", "%%")).one()]
                      if probe else [])
            # The driver reads '%' as a placeholder marker once parameters are passed.
            def corrupt() -> None:
                fx.corrupt(lambda sql: conn.exec_driver_sql(sql.replace("%", "%%")), corruption)

            if check_id in PREVENTED_BY_PG_KEYS:
                with pytest.raises(exc.IntegrityError):
                    corrupt()
                return
            corrupt()
            report = run_invariants(conn)
        finally:
            trans.rollback()
    _assert_fails_exactly(report, expected_with_outbox(check_id))
    _assert_sample_names(report, check_id, values)
