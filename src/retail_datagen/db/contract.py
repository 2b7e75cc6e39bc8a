"""Checks against the schema contract shared by the DuckDB and SQLAlchemy engines, and the
mapping of PascalCase generator batches onto it (:func:`map_batch`).

Both engines refuse an Arrow batch whose columns the table does not have, and both compare
existing tables with their contract before writing. The wording of those errors, and the remedy
they name, live here so that the two engines report a difference in the same words.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from retail_datagen.db import schema
from retail_datagen.db.schema import DIM_TABLES, duckdb_columns, table
from retail_datagen.errors import SchemaContractError, SchemaMismatchError, UnknownTableError

#: The trace-id column generator batches carry when outbox events are built (not a contract column).
TRACE_ID = "TraceId"

# Longest list of positional differences reported per table; after a dropped column every later
# position differs, and the missing/unexpected lines already say what happened.
_MAX_POSITION_DIFFS = 5


def require_state_table(name: str, operation: str) -> None:
    """Refuse ``operation`` (upsert, replace, retain) on anything but a ``gen_*`` state table.

    Raises:
        UnknownTableError: ``name`` is not a state table; the message lists the valid names.
    """
    if name not in schema.STATE_TABLES:
        raise UnknownTableError(
            f"{operation} needs a generator-state table, got {name!r}; valid names are: "
            + ", ".join(schema.STATE_TABLES))


def checked_columns(name: str, data: pa.Table) -> list[str]:
    """Return the batch's column names after checking them against the table's contract.

    Args:
        name: A database table name of the contract.
        data: The batch to write; it may omit columns, in any order.

    Returns:
        ``data.column_names``.

    Raises:
        SchemaContractError: A column is not in the contract, or a name is repeated.
    """
    contract = [c.name for c in table(name).c]
    unknown = [c for c in data.column_names if c not in contract]
    if unknown or len(set(data.column_names)) != len(data.column_names):
        raise SchemaContractError(
            f"Arrow batch for {name} has columns not in the contract or repeated: "
            f"{unknown or data.column_names}; expected a subset of {contract}"
        )
    return data.column_names


def table_diff(expected: list[tuple[str, str]], found: list[tuple[str, str]]) -> list[str]:
    """Describe how a table's ``(column, type)`` pairs differ from the expected ones.

    Args:
        expected: The contract pairs, in column order (``schema.duckdb_columns``).
        found: The pairs of the existing table, in column order, with contract type names.

    Returns:
        One line per difference (positions first, then missing and unexpected columns);
        empty when the table matches.
    """
    problems: list[str] = []
    positional = [
        f"column {i + 1} expected '{e[0]} {e[1]}', found '{f[0]} {f[1]}'"
        for i, (e, f) in enumerate(zip(expected, found, strict=False))
        if e != f
    ]
    if len(positional) > _MAX_POSITION_DIFFS:
        extra = len(positional) - _MAX_POSITION_DIFFS
        positional = [*positional[:_MAX_POSITION_DIFFS], f"… and {extra} more positions differ"]
    problems.extend(positional)
    found_names = {n for n, _ in found}
    expected_names = {n for n, _ in expected}
    problems.extend(f"missing column '{n}'" for n, _ in expected if n not in found_names)
    problems.extend(f"unexpected column '{n}'" for n, _ in found if n not in expected_names)
    return problems


def check_existing_tables(found: Iterable[tuple[str, list[tuple[str, str]]]]) -> None:
    """Compare existing tables with their contract; raise on any difference.

    Args:
        found: ``(database table name, its (column, contract type) pairs)`` for every existing
            table to check; tables that do not exist are simply left out.

    Raises:
        SchemaMismatchError: One or more tables differ; the message holds a per-table diff and
            the remedy.
    """
    report: list[str] = []
    bad_dims = False
    for name, columns in found:
        problems = table_diff(duckdb_columns(name), columns)
        if problems:
            report.append(f"{name}: " + "; ".join(problems))
            bad_dims = bad_dims or name in DIM_TABLES
    if not report:
        return
    remedy = (
        "Nothing was changed. Drop the fact, outbox and state tables with "
        "FactDataGenerator.reset_facts() or the CLI's --reset"
    )
    if bad_dims:
        remedy += (
            "; regenerate the dimension tables with MasterDataGenerator.generate_all(force=True)"
        )
    raise SchemaMismatchError(
        "existing tables differ from the schema contract:\n  "
        + "\n  ".join(report)
        + f"\n{remedy}."
    )




def map_batch(name: str, batch: pa.Table) -> pa.Table:
    """Rename a generator batch to the contract columns, in DDL order, with contract types.

    Raises:
        SchemaContractError: a column is unmapped or a contract column is missing.
    """
    logical = schema.logical_fact_name(name)
    mapping = schema.GENERATOR_NAMES[logical]
    present = [c for c in batch.column_names if c != TRACE_ID]
    unknown = [c for c in present if c not in mapping]
    missing = [g for g in mapping if g not in batch.column_names]
    if unknown or missing:
        raise SchemaContractError(
            f"{logical}: batch columns do not match the contract "
            f"(unmapped: {unknown}, missing: {missing})")
    target = schema.arrow_schema(logical)
    by_db = {mapping[g]: batch.column(g) for g in present}
    try:
        return pa.table([by_db[f.name].cast(f.type) for f in target], schema=target)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaContractError(f"{logical}: cannot cast to the contract: {exc}") from exc


__all__ = ["TRACE_ID", "check_existing_tables", "checked_columns", "map_batch", "table_diff"]
