"""INV-54: outbox integrity, checked only when ``streaming_outbox`` holds rows.

The key set of every payload is checked in SQL against the fact table's columns (fact-tables.md
§20: ``*_id_ext`` keys drop their suffix, plus ``trace_id``), and each event's message type
against its row; the key sets and the message-type rules are those of
:mod:`retail_datagen.streaming.schemas`. The first 100 events per (message_type, date) are also
validated by their pydantic model from ``retail_datagen.streaming.schemas.MESSAGE_MODELS``,
looked up when the check runs; that sub-check is skipped with a note when the mapping is
unavailable.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import DateTime

from retail_datagen.db.fact_schema import FACT_TABLES
from retail_datagen.db.schema import FACT_TABLE_DB_NAMES, OUTBOX_TABLE, primary_key, table
from retail_datagen.streaming.schemas import (
    MESSAGE_TYPE_RULES,
    TABLE_MESSAGE_TYPES,
    message_type_expression,
    payload_fields,
)
from retail_datagen.validation.core import (
    Check,
    Context,
    Query,
    SkipQuery,
    sql_list,
    sql_str,
    values_table,
    violations,
)

#: message_type per logical table: a constant, or (column, {value: message_type}).
MESSAGE_TYPES = MESSAGE_TYPE_RULES

PYDANTIC_SAMPLE = 100
_GUARD = f"SELECT count(*) FROM (SELECT 1 FROM {OUTBOX_TABLE} LIMIT 1) AS any_event"


def payload_keys(logical: str) -> str:
    """The payload key set of a table's events, sorted and comma-joined."""
    return ",".join(sorted(payload_fields(logical)))


def _trace_sql(logical: str, alias: str) -> str:
    """The row's TraceId: ``<logical>:`` + its key values joined by ``:`` (fact-tables.md §0)."""
    tbl = table(logical)
    parts = []
    for key in primary_key(logical):
        col = f"{alias}.{key}"
        if isinstance(tbl.c[key].type, DateTime):
            parts.append(f"<<isots:{col}>>")
        else:
            parts.append(f"CAST({col} AS VARCHAR)")
    return f"{sql_str(logical + ':')} || " + " || ':' || ".join(parts)


def _prefix(alias: str = "o") -> str:
    return f"split_part({alias}.trace_id, ':', 1)"


def _guarded(sql: str, tables: tuple[str, ...] = ()) -> Query:
    # Every query is gated on a non-empty outbox, so that an empty one leaves INV-54 skipped.
    return Query(sql, tables=tables, guard=_GUARD)


def _message_models() -> dict[str, type[BaseModel]] | None:
    try:
        module = importlib.import_module("retail_datagen.streaming.schemas")
    except ImportError:
        return None
    models = getattr(module, "MESSAGE_MODELS", None)
    return models if isinstance(models, dict) else None


def _validate_payloads(models: dict[str, type[BaseModel]]) -> Any:
    def judge(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not rows:
            raise SkipQuery("empty outbox")
        bad = []
        for row in rows:
            model = models.get(row["message_type"])
            if model is None:
                continue  # an unknown message_type is reported by the SQL sub-check
            try:
                model.model_validate_json(row["payload"])
            except ValidationError as exc:
                first = exc.errors()[0]
                bad.append({
                    "rule": "payload fails its pydantic model",
                    "outbox_id": row["outbox_id"],
                    "message_type": row["message_type"],
                    "error": f"{'.'.join(map(str, first['loc']))}: {first['msg']}",
                })
        return bad

    return judge


def _inv54(ctx: Context) -> Iterator[Query]:
    for column in ("outbox_id", "trace_id"):
        yield _guarded(
            f"SELECT '{column} not unique' AS rule, {column}, count(*) AS copies "
            f"FROM {OUTBOX_TABLE} WHERE <<rows:event_ts>> GROUP BY {column} HAVING count(*) > 1"
        )
    keys = values_table("k", ("tbl", "payload_keys"), ((t, payload_keys(t)) for t in FACT_TABLES))
    types = values_table(
        "mt", ("tbl", "message_type"),
        ((t, m) for t in FACT_TABLES for m in TABLE_MESSAGE_TYPES[t]),
    )
    yield _guarded(
        "SELECT * FROM (SELECT o.outbox_id, o.trace_id, o.message_type, "
        + violations(
            ("k.tbl IS NULL", "trace_id does not name a fact table"),
            ("k.tbl IS NOT NULL AND mt.tbl IS NULL", "message_type does not match the table"),
            ("o.partition_key IS NULL OR o.partition_key = ''", "empty partition_key"),
        )
        + f" AS rule FROM {OUTBOX_TABLE} o LEFT JOIN {keys} ON k.tbl = {_prefix()} "
        f"LEFT JOIN {types} ON mt.tbl = {_prefix()} AND mt.message_type = o.message_type "
        "WHERE <<rows:o.event_ts>>) v WHERE rule <> ''"
    )
    # Payloads come in a handful of key shapes: compare each distinct shape once, then report
    # the events of the shapes that differ.
    yield _guarded(
        f"WITH o AS (SELECT outbox_id, {_prefix()} AS tbl, <<json_keys:o.payload>> AS keys "
        f"FROM {OUTBOX_TABLE} o WHERE <<rows:o.event_ts>>), "
        "s AS (SELECT tbl, keys, <<key_set:keys>> AS key_set "
        "FROM (SELECT DISTINCT tbl, keys FROM o) AS d), "
        f"b AS (SELECT s.tbl, s.keys, s.key_set FROM s JOIN {keys} ON k.tbl = s.tbl "
        "WHERE s.key_set IS DISTINCT FROM k.payload_keys) "
        "SELECT 'payload keys differ from the model fields' AS rule, o.outbox_id, o.tbl, "
        "b.key_set AS payload_keys FROM o JOIN b ON b.tbl = o.tbl "
        "AND b.keys IS NOT DISTINCT FROM o.keys"
    )
    for logical in FACT_TABLES:
        db = FACT_TABLE_DB_NAMES[logical]
        yield _guarded(
            f"WITH o AS (SELECT outbox_id, trace_id, message_type, event_ts FROM {OUTBOX_TABLE} o "
            f"WHERE {_prefix()} = {sql_str(logical)} AND <<rows:o.event_ts>>), "
            f"f AS (SELECT {_trace_sql(logical, 'x')} AS trace_id, x.event_ts, "
            f"{message_type_expression(logical, qualifier='x.')} AS message_type FROM {db} x "
            f"WHERE x.event_ts IN (SELECT event_ts FROM o)) "
            "SELECT * FROM (SELECT o.outbox_id, o.trace_id, "
            + violations(
                ("f.trace_id IS NULL", "trace_id does not resolve to a fact row"),
                ("f.trace_id IS NOT NULL AND o.message_type IS DISTINCT FROM f.message_type",
                 "message_type does not match the row's status or type"),
            )
            + " AS rule FROM o LEFT JOIN f ON f.trace_id = o.trace_id "
            "AND f.event_ts = o.event_ts) v WHERE rule <> ''",
            tables=(db,),
        )
        yield _guarded(
            f"WITH f AS (SELECT CAST(event_ts AS DATE) AS dd, count(*) AS n FROM {db} "
            "GROUP BY CAST(event_ts AS DATE)), "
            f"o AS (SELECT CAST(event_ts AS DATE) AS dd, count(*) AS n FROM {OUTBOX_TABLE} o "
            f"WHERE {_prefix()} = {sql_str(logical)} GROUP BY CAST(event_ts AS DATE)) "
            f"SELECT 'event count <> row count' AS rule, {sql_list([logical])} AS table_name, "
            "d.dd AS day, COALESCE(f.n, 0) AS rows_written, COALESCE(o.n, 0) AS events "
            "FROM <<outbox_days>> LEFT JOIN f ON f.dd = d.dd LEFT JOIN o ON o.dd = d.dd "
            "WHERE COALESCE(f.n, 0) <> COALESCE(o.n, 0)",
            tables=(db,),
        )
    models = _message_models()
    if models is None:
        ctx.note("retail_datagen.streaming.schemas.MESSAGE_MODELS is unavailable; "
                 "payloads were not validated by their pydantic models")
        return
    # Rank on the narrow columns first; fetch the payload text of the chosen events only.
    yield Query(
        f"WITH f AS (SELECT outbox_id FROM (SELECT outbox_id, row_number() OVER "
        "(PARTITION BY message_type, CAST(event_ts AS DATE) ORDER BY outbox_id) AS rn "
        f"FROM {OUTBOX_TABLE} WHERE <<rows:event_ts>>) AS r WHERE rn <= {PYDANTIC_SAMPLE}) "
        f"SELECT o.outbox_id, o.message_type, o.payload FROM {OUTBOX_TABLE} o "
        "WHERE o.outbox_id IN (SELECT outbox_id FROM f)",
        post=_validate_payloads(models),
        guard=_GUARD,
    )


CHECKS: tuple[Check, ...] = (
    Check("INV-54", "Outbox integrity", _inv54),
)
