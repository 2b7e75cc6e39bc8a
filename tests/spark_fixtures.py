"""Real Spark for the tests: ``local[N]`` sessions started here, one at a time.

Without Java (or PySpark) the Spark tests are skipped, except under CI (the ``CI`` environment
variable set), where they fail: CI must run them.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Small and quiet: two cores are shared by everything the tests start.
TEST_SPARK_CONF = {
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "2",
    "spark.python.worker.reuse": "true",
}


def java_executable() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def require_spark() -> None:
    """Skip (fail under CI) when Spark cannot run here."""
    missing = None
    if java_executable() is None:
        missing = "Java is not installed (PySpark needs a Java 17+ runtime)"
    else:
        try:
            import pyspark  # noqa: F401
        except ImportError:
            missing = "pyspark is not installed (pip install -e '.[dev]')"
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"Spark tests cannot run under CI: {missing}")
    pytest.skip(missing)


class SparkSessions:
    """One live SparkSession at a time; asking for another master stops the current one
    (a JVM holds one SparkContext)."""

    def __init__(self) -> None:
        self.session = None
        self.key: tuple | None = None

    def get(self, master: str, **conf: str):
        from retail_datagen.lake.spark import spark_session

        key = (master, tuple(sorted(conf.items())))
        if self.session is not None and self.key == key:
            return self.session
        self.stop()
        # The Python workers run this interpreter, which has the package installed.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        self.session = spark_session(master, app_name="retail-datagen-tests",
                                     conf={**TEST_SPARK_CONF, **conf})
        self.key = key
        return self.session

    def stop(self) -> None:
        if self.session is not None:
            self.session.stop()
            self.session, self.key = None, None


@pytest.fixture(scope="session")
def spark_sessions() -> Iterator[SparkSessions]:
    require_spark()
    sessions = SparkSessions()
    try:
        yield sessions
    finally:
        sessions.stop()
