"""The same configuration gives the same tables, however the work is split or run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import duckdb
import pytest

from conftest import TEST_WEEK, config_in, generate
from db_hash import table_hashes
from retail_datagen.db import schema

pytestmark = pytest.mark.slow
FACTS = tuple(schema.FACT_TABLE_DB_NAMES.values())
_CHILD = textwrap.dedent("""
    import sys
    from datetime import date
    sys.path.insert(0, {tests!r})
    from conftest import config_in, generate
    from pathlib import Path
    generate(config_in(Path({folder!r})), date(2024, 11, 25), date(2024, 12, 1))
""")


def _run_child(folder: Path, env: dict[str, str]) -> None:
    code = _CHILD.format(tests=str(Path(__file__).parent), folder=str(folder))
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, **env},
                   timeout=600)


def test_every_fact_table_is_written(generated_week: Path) -> None:
    counts = {k: int(v.split(":")[0]) for k, v in table_hashes(generated_week, FACTS).items()}
    assert all(n > 0 for n in counts.values()), counts


def test_separate_processes_hash_seed_and_time_zone(generated_week: Path,
                                                    tmp_path: Path) -> None:
    reference = table_hashes(generated_week)
    for i, (hash_seed, tz) in enumerate((("1", "America/Los_Angeles"), ("12345", "Asia/Tokyo"))):
        folder = tmp_path / f"p{i}"
        folder.mkdir()
        _run_child(folder, {"PYTHONHASHSEED": hash_seed, "TZ": tz})
        assert table_hashes(folder / "retail.duckdb") == reference


@pytest.mark.parametrize("performance", [{"batch_hours": 1}, {"max_workers": 4},
                                         {"max_workers": 1}])
def test_batch_hours_and_workers_do_not_change_data(generated_week: Path, tmp_path: Path,
                                                    performance: dict) -> None:
    config = config_in(tmp_path, performance=performance)
    generate(config, *TEST_WEEK)
    assert table_hashes(tmp_path / "retail.duckdb") == table_hashes(generated_week)


def test_split_range_equals_one_call(generated_week: Path, tmp_path: Path) -> None:
    config = config_in(tmp_path)
    generate(config, date(2024, 11, 25), date(2024, 11, 27))
    generate(config, date(2024, 11, 28), date(2024, 12, 1))
    assert table_hashes(tmp_path / "retail.duckdb") == table_hashes(generated_week)


def test_included_tables_match_on_what_they_include(generated_week: Path,
                                                    tmp_path: Path) -> None:
    included = ("receipts", "fact_receipt_lines", "stockouts", "ble_pings")
    generate(config_in(tmp_path), *TEST_WEEK, tables=included)
    names = tuple(schema.db_table_name(n) for n in included)
    assert table_hashes(tmp_path / "retail.duckdb", names) == table_hashes(generated_week, names)
    con = duckdb.connect(str(tmp_path / "retail.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM fact_truck_moves").fetchone()[0] == 0
    con.close()


def test_sigkill_leaves_whole_days_and_resumes_identically(generated_week: Path,
                                                           tmp_path: Path) -> None:
    code = _CHILD.format(tests=str(Path(__file__).parent), folder=str(tmp_path)).replace(
        "generate(", "import retail_datagen.generators.fact_generators.persistence_mixin as pm\n"
        "orig = pm.PersistenceMixin._write_day\n"
        "def noisy(self, day, *a, **k):\n"
        "    out = orig(self, day, *a, **k)\n"
        "    print('committed', day, flush=True)\n"
        "    return out\n"
        "pm.PersistenceMixin._write_day = noisy\n"
        "generate(", 1)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        seen = 0
        for line in child.stdout:
            if line.startswith("committed"):
                seen += 1
                if seen == 3:
                    child.send_signal(signal.SIGKILL)
                    break
    finally:
        child.wait(timeout=60)
    db = tmp_path / "retail.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    last_day = con.execute("SELECT last_day FROM gen_watermark").fetchone()[0]
    assert date(2024, 11, 27) <= last_day < date(2024, 12, 1)
    for name in FACTS:
        late = con.execute(f"SELECT count(*) FROM {name} WHERE CAST(event_ts AS DATE) > ?",
                           [last_day]).fetchone()[0]
        assert late == 0, name
    con.close()
    _run_child(tmp_path, {})
    assert table_hashes(db) == table_hashes(generated_week)
