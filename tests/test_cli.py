"""The ``retail-datagen`` command line: options, config errors, exit codes and the commands."""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
import sys
import types
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from retail_datagen import cli, errors
from retail_datagen.cli import app, exit_code_for, main, mask_secrets
from retail_datagen.cli_facts import print_facts_summary
from retail_datagen.cli_render import FactsProgress
from retail_datagen.config.models import RetailConfig
from retail_datagen.config.settings import STARTER_CONFIG, create_default_config, create_test_config

SCRIPT = Path(sys.executable).with_name("retail-datagen")
ALL_CHECKS = {
    *(f"INV-{n:02d}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 20, 21, 22,
                               23, 24, 30, 31, 32, 33, 34, 35, 36, 37, 40, 41, 42, 43, 44, 50,
                               51, 52, 53, 54)),
    "W-01", "W-02", "W-03", "W-04",
}


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    # A developer's environment must not redirect the tests to another database.
    monkeypatch.delenv(cli.DATABASE_URL_ENV, raising=False)
    return CliRunner()


def write_test_config(folder: Path) -> Path:
    """The small test configuration with its database and folders inside ``folder``."""
    paths = {"dict": str(folder / "dictionaries"), "master": str(folder / "master"),
             "facts": str(folder / "facts"), "duckdb": str(folder / "retail.duckdb")}
    path = folder / "config.json"
    create_test_config(paths=paths).to_file(path)
    return path


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def starter_with(**changes: Any) -> dict[str, Any]:
    """STARTER_CONFIG with ``{"section.field": value}``-style changes (``__`` for the dot)."""
    data = copy.deepcopy(STARTER_CONFIG)
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            data[section][name] = value
        else:
            data[section] = value
    return data


def error_line(result: Any) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, result.output
    return lines[-1]


# --- help and entry point ----------------------------------------------------------------------

COMMANDS = [["init-config"], ["master"], ["facts"], ["validate"], ["export"], ["status"],
            ["outbox"], ["outbox", "show"], ["outbox", "drain"]]


def test_help_lists_every_command(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for name in ("init-config", "master", "facts", "validate", "export", "outbox", "status"):
        assert name in result.stdout
    for option in ("--config", "--db", "--database-url", "--verbose", "--quiet"):
        assert option in result.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout


def test_bare_command_prints_help(runner: CliRunner) -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == 2
    assert "Usage" in result.output and "init-config" in result.output


def test_facts_help_lists_its_options(runner: CliRunner) -> None:
    result = runner.invoke(app, ["facts", "--help"])
    for option in ("--start", "--end", "--tables", "--outbox", "--no-validate", "--reset",
                   "--no-progress"):
        assert option in result.stdout


def test_importing_the_cli_does_not_import_the_engine() -> None:
    heavy = ["duckdb", "numpy", "pandas", "pyarrow", "sqlalchemy", "pydantic",
             "retail_datagen.generators"]
    code = f"import sys, retail_datagen.cli; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_console_script_help() -> None:
    result = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "init-config" in result.stdout


def test_console_script_error_is_one_line_and_traceback_only_with_verbose(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != cli.DATABASE_URL_ENV}
    plain = subprocess.run([str(SCRIPT), "master"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=60)
    assert plain.returncode == 2
    assert plain.stderr.strip().count("\n") == 0
    assert plain.stderr.startswith("error: ")
    assert "Traceback" not in plain.stderr
    verbose = subprocess.run([str(SCRIPT), "-v", "master"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert verbose.returncode == 2
    assert "Traceback" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1].startswith("error: ")


def test_main_exits_with_the_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["init-config"])
    assert exit_info.value.code == 0
    with pytest.raises(SystemExit) as exit_info:
        main(["init-config"])
    assert exit_info.value.code == 2
    assert "exists (use --force)" in capsys.readouterr().err


# --- init-config ---------------------------------------------------------------------------


def test_init_config_writes_a_loadable_starter_config(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "conf" / "retail.json"
    result = runner.invoke(app, ["init-config", str(target)])
    assert result.exit_code == 0, result.output
    assert RetailConfig.from_file(target) == create_default_config()


def test_init_config_refuses_to_overwrite_without_force(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    assert runner.invoke(app, ["init-config", str(target)]).exit_code == 0
    target.write_text("{}", encoding="utf-8")
    second = runner.invoke(app, ["init-config", str(target)])
    assert second.exit_code == 2
    assert error_line(second).startswith("error: ")
    assert "exists (use --force)" in error_line(second)
    assert target.read_text(encoding="utf-8") == "{}"
    forced = runner.invoke(app, ["init-config", str(target), "--force"])
    assert forced.exit_code == 0, forced.output
    assert RetailConfig.from_file(target) == create_default_config()


def test_init_config_defaults_to_the_config_option(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "chosen.json"
    result = runner.invoke(app, ["--config", str(target), "init-config"])
    assert result.exit_code == 0, result.output
    assert target.is_file()


# --- configuration errors (exit 2) -----------------------------------------------------------


def test_missing_config_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(tmp_path / "nope.json"), "master"])
    assert result.exit_code == 2
    assert error_line(result).startswith("error: ")
    assert "nope.json" in error_line(result)


def test_no_config_in_the_working_directory(runner: CliRunner, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["master"])
    assert result.exit_code == 2
    assert "init-config" in error_line(result)


def test_malformed_json(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"seed": 42,', encoding="utf-8")
    result = runner.invoke(app, ["--config", str(path), "master"])
    assert result.exit_code == 2
    assert "not valid JSON" in error_line(result)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"volume__bogus_knob": 1}, "bogus_knob"),
        ({"typo_section": {}}, "typo_section"),
        ({"volume__stores": 0}, "volume.stores"),
        ({"volume__dcs": 21}, "dcs"),  # total_geographies is 20 in the starter config
        ({"seed": -1}, "seed"),
    ],
    ids=["unknown-field", "unknown-section", "zero-stores", "dcs-over-geographies",
         "negative-seed"],
)
def test_invalid_config_exits_2_naming_the_field(runner: CliRunner, tmp_path: Path,
                                                 changes: dict[str, Any], named: str) -> None:
    path = write_json(tmp_path / "config.json", starter_with(**changes))
    result = runner.invoke(app, ["--config", str(path), "--db", str(tmp_path / "x.duckdb"),
                                 "master"])
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert line.startswith("error: ") and named in line
    assert not (tmp_path / "x.duckdb").exists()


# --- usage errors (exit 2) -------------------------------------------------------------------


def test_verbose_and_quiet_conflict(runner: CliRunner) -> None:
    assert runner.invoke(app, ["-v", "-q", "status"]).exit_code == 2


def test_db_and_database_url_conflict(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["--db", str(tmp_path / "a.duckdb"), "--database-url",
                                 f"sqlite:///{tmp_path / 'b.sqlite'}", "status"])
    assert result.exit_code == 2


def test_explicit_db_beats_the_environment_url(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "missing.duckdb"
    env = {cli.DATABASE_URL_ENV: f"sqlite:///{tmp_path / 'env.sqlite'}"}
    result = runner.invoke(app, ["--db", str(missing), "status"], env=env)
    assert result.exit_code == 3  # the read-only DuckDB file does not exist
    assert "missing.duckdb" in error_line(result)


@pytest.mark.parametrize("args", [["facts", "--end", "2024-13-01"],
                                  ["facts", "--start", "2024-11-25"],
                                  ["validate", "--start", "yesterday"],
                                  ["outbox", "show", "--status", "lost"],
                                  ["outbox", "show", "--limit", "0"],
                                  ["no-such-command"]])
def test_bad_arguments_exit_2_with_one_error_line(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: ") and "--help" in result.stderr


# --- exit codes and messages ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.ConfigError("volume.stores: bad"), 2),
        (errors.ConfigFileNotFoundError("config.json"), 2),
        (errors.DateRangeError("end before start"), 2),
        (errors.UnknownTableError("bogus"), 2),
        (errors.DatabaseError("cannot open"), 3),
        (errors.DatabaseLockedError("locked"), 3),
        (errors.SchemaMismatchError("fact_receipts differs"), 3),
        (errors.StateMismatchError("fingerprint"), 3),
        (errors.MasterDataError("master"), 4),
        (errors.MasterDataMissingError("dim_stores"), 4),
        (errors.MasterDataExistsError("exists"), 4),
        (errors.DataPackageError("too small"), 4),
        (errors.GenerationError("day failed", day=date(2024, 11, 25)), 5),
        (errors.SchemaContractError("unmapped column"), 5),
        (KeyboardInterrupt(), 130),
        (RuntimeError("unexpected"), 1),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_exit_code_mapping(exc: BaseException, code: int) -> None:
    assert exit_code_for(exc) == code


def test_schema_mismatch_is_one_error_line_and_exit_3(runner: CliRunner,
                                                      tmp_path: Path) -> None:
    import duckdb

    config = write_test_config(tmp_path)
    con = duckdb.connect(str(tmp_path / "retail.duckdb"))
    con.execute("CREATE TABLE fact_store_ops (event_ts TIMESTAMP, store_id BIGINT, op VARCHAR)")
    con.close()
    result = runner.invoke(app, ["--config", str(config), "facts", "--end", "2024-03-04"])
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "operation_type" in lines[0]
    assert "Traceback" not in result.stderr
    verbose = runner.invoke(app, ["-v", "--config", str(config), "facts", "--end", "2024-03-04"])
    assert verbose.exit_code == 3 and "Traceback" in verbose.stderr


def test_validate_without_a_database_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["--db", str(tmp_path / "missing.duckdb"), "validate"])
    assert result.exit_code == 3
    assert result.stderr.startswith("error: ") and not (tmp_path / "missing.duckdb").exists()


def test_mask_secrets() -> None:
    assert mask_secrets("postgresql+psycopg://app:s3cret@db:5432/retail") == (
        "postgresql+psycopg://app:***@db:5432/retail")
    masked = mask_secrets("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;"
                          "SharedAccessKey=abc+def=;EntityPath=hub")
    assert "abc+def" not in masked and "SharedAccessKey=***" in masked
    assert "SharedAccessKeyName=send" in masked and "EntityPath=hub" in masked
    assert mask_secrets("data/retail.duckdb") == "data/retail.duckdb"
    assert mask_secrets("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"


def test_plain_progress_prints_one_line_per_day() -> None:
    buffer = io.StringIO()
    progress = FactsProgress(Console(file=buffer, width=200), date(2024, 11, 28), live=False)
    with progress:
        progress(0, "Preparing historical data generation")
        progress(1, "Generating 2024-11-25 (day 1/4)", table_counts={"receipts": 0})
        progress(1, "Generated 2024-11-25 (day 1/4) (18/18 tables complete)",
                 table_counts={"receipts": 100, "receipt_lines": 400})
        # Throttled: days 2 and 3 were committed without a callback reaching us.
        progress(4, "Generating 2024-11-28 (day 4/4)", table_counts={"receipts": 300})
        progress(4, "Generated 2024-11-28 (day 4/4) (18/18 tables complete)",
                 table_counts={"receipts": 400, "receipt_lines": 1600})
        progress(4, "Historical generation complete")
    lines = buffer.getvalue().splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["day", "1/4", "2024-11-25"], ["day", "2/4", "2024-11-26"], ["day", "3/4", "2024-11-27"],
        ["day", "4/4", "2024-11-28"]]
    assert "500 rows" in lines[0] and "2,000 rows" in lines[3]


def test_live_progress_draws_the_bar() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, force_terminal=True, color_system=None)
    progress = FactsProgress(console, date(2024, 11, 26), live=True)
    with progress:
        progress(1, "Generating 2024-11-25 (day 1/2)")
        progress(2, "Generated 2024-11-26 (day 2/2) (18/18 tables complete)",
                 table_counts={"receipts": 1234}, estimated_seconds_remaining=0.0)
    drawn = buffer.getvalue()
    assert "100%" in drawn and "day 2/2" in drawn and "2024-11-26" in drawn
    assert "1,234 rows" in drawn and "rows/s" in drawn and "ETA" in drawn


def test_failed_validation_in_the_facts_summary_exits_1(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    import typer

    state = cli._State(None, None, None, out=Console(file=io.StringIO()))
    summary = types.SimpleNamespace(
        date_range=(datetime(2024, 11, 25), datetime(2024, 11, 26)),
        facts_generated={"receipts": 10, "receipt_lines": 30}, total_records=40,
        generation_time_seconds=2.0, days_generated=2, days_skipped=0, outbox_events=0,
        validation_results={"passed": False, "error_count": 1, "warning_count": 0,
                            "errors": ["INV-07: 3 violations"], "warnings": [], "checks": {}})
    with pytest.raises(typer.Exit) as exit_info:
        print_facts_summary(state, summary)
    assert exit_info.value.exit_code == 1
    assert "validation: FAILED (1 errors, 0 warnings)" in capsys.readouterr().out
    summary.validation_results = {"skipped": True}
    state.out = Console(file=io.StringIO())
    print_facts_summary(state, summary, {"fact_receipts"})
    shown = state.out.file.getvalue()
    assert "validation: skipped" in shown and "20 rows/s" in shown
    assert "receipts" in shown and "receipt_lines" not in shown  # only the --tables chosen


def test_logging_setup_is_undone_after_a_command(runner: CliRunner, tmp_path: Path) -> None:
    import logging

    logger = logging.getLogger("retail_datagen")
    before = logger.level, list(logger.handlers)
    runner.invoke(app, ["-vv", "--db", str(tmp_path / "none.duckdb"), "status"])
    runner.invoke(app, ["-q", "--db", str(tmp_path / "none.duckdb"), "status"])
    assert (logger.level, list(logger.handlers)) == before


def test_status_of_an_empty_sqlalchemy_database(runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    result = runner.invoke(app, ["--database-url", url, "status"])
    assert result.exit_code == 0, result.output
    assert "watermark: none" in result.stdout
    assert "outbox: no table" in result.stdout


def test_status_without_a_duckdb_file_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["--db", str(tmp_path / "none.duckdb"), "status"])
    assert result.exit_code == 3
    assert not (tmp_path / "none.duckdb").exists()


# --- end to end (needs the fact engine, the invariants, export and outbox modules) ----------


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose config's database holds master data and 2024-11-25..26 with the outbox.

    Shared by the tests below: work on a copy (``--db``) before writing to it.
    """
    folder = tmp_path_factory.mktemp("cli")
    config = write_test_config(folder)
    runner = CliRunner()
    base = ["--config", str(config)]
    first = _ok(runner.invoke(app, [*base, "master"]))
    assert "dim_customers" in first.stdout and "3,000" in first.stdout
    again = runner.invoke(app, [*base, "master"])
    assert again.exit_code == 4 and error_line(again).startswith("error: ")
    facts = _ok(runner.invoke(app, [*base, "facts", "--start", "2024-11-25", "--end",
                                    "2024-11-26", "--outbox"]))
    assert "validation: passed" in facts.stdout
    assert "day 2/2 2024-11-26 done" in facts.stderr  # no TTY: one plain line per day
    return config


def _copy_db(config: Path, folder: Path) -> str:
    target = folder / "copy.duckdb"
    shutil.copy(config.parent / "retail.duckdb", target)
    return str(target)


@pytest.mark.slow
def test_status_shows_the_watermark_and_counts(generated: Path) -> None:
    result = _ok(CliRunner().invoke(app, ["--config", str(generated), "status"]))
    assert "watermark: 2024-11-25..2024-11-26 (2 days)" in result.stdout
    assert "fact_receipts" in result.stdout and "master_generated_for" in result.stdout
    assert "outbox: pending" in result.stdout


@pytest.mark.slow
def test_validate_json_lists_every_check(generated: Path) -> None:
    result = _ok(CliRunner().invoke(app, ["--config", str(generated), "validate", "--json"]))
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["error_count"] == 0
    assert set(report["checks"]) == ALL_CHECKS


@pytest.mark.slow
def test_validate_only_prints_the_chosen_checks(generated: Path) -> None:
    result = _ok(CliRunner().invoke(app, ["--config", str(generated), "validate", "--only",
                                          "INV-01,INV-07"]))
    assert "INV-01" in result.stdout and "INV-07" in result.stdout
    assert "INV-02" not in result.stdout


@pytest.mark.slow
def test_facts_with_unknown_table_exits_2(generated: Path, tmp_path: Path) -> None:
    db = _copy_db(generated, tmp_path)
    result = CliRunner().invoke(app, ["--config", str(generated), "--db", db, "facts",
                                      "--end", "2024-11-27", "--tables", "receipts,bogus"])
    assert result.exit_code == 2
    assert "bogus" in error_line(result)


@pytest.mark.slow
def test_facts_continues_from_the_watermark(generated: Path, tmp_path: Path) -> None:
    db = _copy_db(generated, tmp_path)
    base = ["--config", str(generated), "--db", db]
    runner = CliRunner()
    _ok(runner.invoke(app, [*base, "facts", "--end", "2024-11-27", "--no-progress",
                            "--tables", "receipts,receipt_lines"]))
    assert "2024-11-25..2024-11-27" in _ok(runner.invoke(app, [*base, "status"])).stdout
    nothing = _ok(runner.invoke(app, [*base, "facts", "--end", "2024-11-26"]))
    assert "nothing to do" in nothing.stderr
    gap = runner.invoke(app, [*base, "facts", "--start", "2024-11-30", "--end", "2024-11-30"])
    assert gap.exit_code == 2


@pytest.mark.slow
def test_export_writes_monthly_files(generated: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    result = _ok(CliRunner().invoke(app, ["--config", str(generated), "export", "--out",
                                          str(out), "--tables", "receipts"]))
    files = [Path(line) for line in result.stdout.splitlines()]
    assert files == [out / "fact_receipts" / "fact_receipts_2024-11.parquet"]
    assert files[0].is_file()


@pytest.mark.slow
def test_outbox_show_and_drain_end_to_end(generated: Path, tmp_path: Path) -> None:
    db = _copy_db(generated, tmp_path)
    base = ["--config", str(generated), "--db", db]
    runner = CliRunner()
    shown = _ok(runner.invoke(app, [*base, "outbox", "show", "--limit", "3"]))
    assert len([json.loads(line) for line in shown.stdout.splitlines()]) == 3
    out = tmp_path / "events.jsonl"
    _ok(runner.invoke(app, [*base, "outbox", "drain", "--limit", "5", "--out", str(out)]))
    events = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(events) == 5 and all(e["hub"] == "retail-events" for e in events)
    sent = _ok(runner.invoke(app, [*base, "outbox", "show", "--status", "sent"]))
    assert "sent 5" in sent.stderr


@pytest.mark.slow
def test_facts_generates_missing_master_data_and_master_force_csv(tmp_path: Path) -> None:
    config = write_test_config(tmp_path)
    base = ["--config", str(config)]
    runner = CliRunner()
    facts = _ok(runner.invoke(app, [*base, "facts", "--start", "2024-03-04", "--end",
                                    "2024-03-04", "--no-validate", "--no-progress"]))
    assert "master data not found" in facts.stderr
    assert "validation: skipped" in facts.stdout
    csv = _ok(runner.invoke(app, [*base, "master", "--force", "--csv"]))
    assert (tmp_path / "master" / "dim_stores.csv").is_file()
    assert str(tmp_path / "master" / "dim_products.csv") in csv.stdout
    assert "watermark: none" in _ok(runner.invoke(app, [*base, "status"])).stdout


@pytest.mark.slow
def test_master_and_status_through_sqlalchemy(tmp_path: Path) -> None:
    config = write_test_config(tmp_path)
    base = ["--config", str(config), "--database-url", f"sqlite:///{tmp_path / 'r.sqlite'}"]
    runner = CliRunner()
    _ok(runner.invoke(app, [*base, "master"]))
    assert runner.invoke(app, [*base, "master"]).exit_code == 4
    status = _ok(runner.invoke(app, [*base, "status"]))
    assert "dim_customers" in status.stdout and "3,000" in status.stdout
    assert not (tmp_path / "retail.duckdb").exists()
