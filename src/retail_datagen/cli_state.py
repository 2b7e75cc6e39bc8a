"""What every ``retail-datagen`` command shares: exit codes and the global options.

Exit codes (api.md §10): 0 success; 1 validation failed (or an unexpected error); 2 usage
error, ``ConfigError``, ``DateRangeError`` or ``UnknownTableError``; 3 ``DatabaseError`` (or a
raw database driver error); 4 ``MasterDataError``; 5 ``GenerationError`` (or an engine
``SchemaContractError``); 130 interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from retail_datagen import errors

if TYPE_CHECKING:
    from retail_datagen.config.models import RetailConfig

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3
EXIT_MASTER_DATA = 4
EXIT_GENERATION = 5
EXIT_INTERRUPTED = 130

DATABASE_URL_ENV = "RETAIL_DATAGEN_DATABASE_URL"
DEFAULT_CONFIG = Path("config.json")
DEFAULT_EXPORT_DIR = Path("data/export")

_EXIT_CODES: tuple[tuple[tuple[type[BaseException], ...], int], ...] = (
    ((errors.ConfigError, errors.DateRangeError, errors.UnknownTableError), EXIT_USAGE),
    ((errors.DatabaseError,), EXIT_DATABASE),
    ((errors.MasterDataError,), EXIT_MASTER_DATA),
    ((errors.GenerationError, errors.SchemaContractError), EXIT_GENERATION),
)
# Errors of these driver packages that escape the library are still database problems.
_DATABASE_MODULES = ("duckdb", "sqlalchemy", "psycopg")


def is_cli_exception(exc: BaseException) -> bool:
    """Tell whether ``exc`` is typer/click control flow (exit, abort, usage error)."""
    # Matched by module: recent typer releases vendor click, older ones re-export it.
    return type(exc).__module__.startswith(("typer.", "click."))


def exit_code_for(exc: BaseException) -> int:
    """Map an exception to the process exit code of api.md §10 (see the module docstring).

    Args:
        exc: The exception that ended a command.

    Returns:
        2, 3, 4 or 5 by exception family, 130 for an interrupt, 1 for anything else.
    """
    for types, code in _EXIT_CODES:
        if isinstance(exc, types):
            return code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    code = getattr(exc, "exit_code", None)
    if is_cli_exception(exc) and isinstance(code, int):
        return code
    if type(exc).__module__.split(".")[0] in _DATABASE_MODULES:
        return EXIT_DATABASE
    return EXIT_FAILED


@dataclass
class CliState:
    """Global options, shared with every command through ``ctx.obj``."""

    config_path: Path | None
    db: str | None
    database_url: str | None
    verbosity: int = 0
    quiet: bool = False
    out: Console = field(default_factory=Console)
    err: Console = field(default_factory=lambda: Console(stderr=True))
    _config: RetailConfig | None = None

    def config(self) -> RetailConfig:
        """The configuration, loaded on first use."""
        if self._config is None:
            from retail_datagen.config.settings import load_config

            self._config = load_config(self.config_path)
        return self._config

    def target(self) -> str:
        """The database: ``--database-url``, else ``--db``, else ``paths.duckdb``."""
        return self.database_url or self.db or self.config().paths.duckdb

    def notice(self, message: str) -> None:
        """A note for people on stderr, silenced by ``--quiet``."""
        if not self.quiet:
            self.err.print(message, markup=False, highlight=False)

    def show(self, renderable: Any) -> None:
        """A summary table or line on stdout, silenced by ``--quiet``."""
        if not self.quiet:
            self.out.print(renderable, markup=False, highlight=False)

    def finish_with_verdict(self, results: dict[str, Any]) -> None:
        """Show the validation verdict of ``results``; if it failed, print it with its first
        errors even under ``--quiet`` (it explains the exit code) and exit with 1."""
        import typer

        from retail_datagen.cli_render import validation_verdict

        passed, verdict = validation_verdict(results)
        if passed:
            self.show(verdict)
            return
        typer.echo(verdict)
        for message in list(results.get("errors", []))[:20]:
            typer.echo(f"  {message}")
        raise typer.Exit(EXIT_FAILED)


__all__ = [
    "DATABASE_URL_ENV", "DEFAULT_CONFIG", "DEFAULT_EXPORT_DIR", "EXIT_DATABASE", "EXIT_FAILED",
    "EXIT_GENERATION", "EXIT_INTERRUPTED", "EXIT_MASTER_DATA", "EXIT_OK", "EXIT_USAGE", "CliState",
    "exit_code_for", "is_cli_exception",
]
