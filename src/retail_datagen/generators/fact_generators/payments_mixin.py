"""Payments of SALE receipts, online orders and returns (behaviour.md §8).

Two pure functions serve every channel, so the online-orders and returns domains reuse them:

* :func:`draw_payment_attempts` ``(gen, n, mix) -> PaymentDraws`` draws the six kinds of
  ``payment.instore`` / ``online.payment`` for n parents (items in seq order). Every kind is drawn
  for every item, declined or not.
* :func:`build_payments` ``(draws, parent_ids, parent_ts_us, total_cents, customer_id, store_id,
  parent_kind, valid_mask) -> (table, approved_method_code)`` turns the draws of the valid
  parents into ``fact_payments`` rows: attempt 1 (DECLINED or APPROVED), then attempt 2
  (APPROVED) after a decline.
* :func:`build_refunds` makes the single REFUNDED row of each RETURN.

Method codes are indices into ``domain.PAYMENT_METHODS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from retail_datagen import domain, money, rng
from retail_datagen.generators.fact_generators.day_types import DayContext
from retail_datagen.generators.fact_generators.receipts_mixin import SaleMoney
from retail_datagen.generators.fact_generators.utils_mixin import (
    dict_strings,
    join_strings,
    ts_array,
)

_M = {name: code for code, name in enumerate(domain.PAYMENT_METHODS)}

#: Tender mixes (behaviour.md §8) as (method code, probability), in printed column order.
TENDER_MIX: dict[str, tuple[tuple[int, float], ...]] = {
    "instore": ((_M["CREDIT_CARD"], .35), (_M["DEBIT_CARD"], .30), (_M["CASH"], .14),
                (_M["MOBILE_PAY"], .21)),
    "online": ((_M["CREDIT_CARD"], .60), (_M["DEBIT_CARD"], .25), (_M["PAYPAL"], .10),
               (_M["OTHER"], .05)),
}
BASE_DECLINE_P = 0.025
#: Per method, in ``domain.PAYMENT_METHODS`` order (CASH, CREDIT_CARD, DEBIT_CARD, MOBILE_PAY,
#: PAYPAL, OTHER): decline multiplier and processing-time range in ms.
DECLINE_MULT = np.array([0.0, 1.0, 0.8, 1.2, 1.1, 0.5])
PROCESSING_MS_LO = np.array([500, 1500, 1200, 800, 2000, 1000], dtype=np.int64)
PROCESSING_MS_HI = np.array([2000, 4000, 3500, 2500, 5000, 3000], dtype=np.int64)
#: int64 (6, 2): [lo, hi] processing ms per method (returns draw their refund ms from it).
PROCESSING_MS = np.stack([PROCESSING_MS_LO, PROCESSING_MS_HI], axis=1)
PROCESSING_MS.flags.writeable = False
PAYMENT_STATUSES: tuple[str, ...] = ("APPROVED", "DECLINED", "REFUNDED")
APPROVED, DECLINED, REFUNDED = range(3)
_US_PER_MS = 1000


@dataclass
class PaymentDraws:
    """The payment variates of n parents (one entry per parent, in item order)."""

    method1: np.ndarray  # int64 (n,) first tender
    declined: np.ndarray  # bool (n,) attempt 1 declined
    reason: np.ndarray  # int64 (n,) into domain.DECLINE_REASONS (used only when declined)
    method2: np.ndarray  # int64 (n,) retry tender, never method1
    ms1: np.ndarray  # int64 (n,) processing ms of attempt 1
    ms2: np.ndarray  # int64 (n,) processing ms of attempt 2

    def __len__(self) -> int:
        return int(self.method1.shape[0])

    @property
    def approved_method(self) -> np.ndarray:
        """int64 (n,): the method of the APPROVED attempt."""
        return np.where(self.declined, self.method2, self.method1)

    @staticmethod
    def concat(parts: list[PaymentDraws]) -> PaymentDraws:
        names = ("method1", "declined", "reason", "method2", "ms1", "ms2")
        if not parts:
            z = np.zeros(0, dtype=np.int64)
            return PaymentDraws(z, z.astype(bool), z, z, z, z)
        return PaymentDraws(*(np.concatenate([getattr(p, k) for p in parts]) for k in names))


def _retry_cdf(mix: str) -> np.ndarray:
    p = np.array([w for _, w in TENDER_MIX[mix]], dtype=np.float64)
    rows = np.tile(p, (p.size, 1))
    rows[np.arange(p.size), np.arange(p.size)] = 0.0
    cdf = np.cumsum(rows, axis=1)
    return cdf / cdf[:, -1:]


_RETRY_CDF = {mix: _retry_cdf(mix) for mix in TENDER_MIX}


def draw_payment_attempts(gen: np.random.Generator, n: int,
                          mix: Literal["instore", "online"]) -> PaymentDraws:
    """Draw the payment kinds for ``n`` parents from one stream.

    Kinds, in draw order (one numpy call each, n values): tender (categorical over the mix);
    decline coin (``rng.random(n) < 0.025 × multiplier(tender)``); reason U{0..6}; retry tender
    (categorical over the mix with the first method's probability zeroed); ms₁ U{lo..hi} of the
    first method; ms₂ U{lo..hi} of the retry method.

    Args:
        gen: ``payment.instore`` (per store, SALE receipts in seq order) or ``online.payment``
            (candidate orders in seq order).
        n: Number of parents (items).
        mix: ``"instore"`` or ``"online"``.

    Returns:
        :class:`PaymentDraws` of length n.
    """
    methods = np.array([m for m, _ in TENDER_MIX[mix]], dtype=np.int64)
    p = np.array([w for _, w in TENDER_MIX[mix]], dtype=np.float64)
    pos1 = rng.categorical(gen, p, n)
    method1 = methods[pos1]
    declined = gen.random(n) < BASE_DECLINE_P * DECLINE_MULT[method1]
    reason = rng.uniform_int(gen, 0, len(domain.DECLINE_REASONS) - 1, n)
    # rng.categorical_rows over the mix with the first tender zeroed; the normalised cdf of
    # each of those rows is computed once per mix.
    retry_cdf = _RETRY_CDF[mix]
    pos2 = (retry_cdf[pos1] <= gen.random(n)[:, None]).sum(axis=1)
    method2 = methods[np.minimum(pos2, retry_cdf.shape[1] - 1)]
    ms1 = rng.uniform_int(gen, PROCESSING_MS_LO[method1], PROCESSING_MS_HI[method1], n)
    ms2 = rng.uniform_int(gen, PROCESSING_MS_LO[method2], PROCESSING_MS_HI[method2], n)
    return PaymentDraws(method1.astype(np.int64), declined, reason.astype(np.int64),
                        method2.astype(np.int64), ms1.astype(np.int64), ms2.astype(np.int64))


def _as_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _payments_table(txn_parent: pa.Array, attempt: np.ndarray, ts_us: np.ndarray,
                    parent_ids: pa.Array, parent_kind: str, store_id: np.ndarray | None,
                    customer_id: np.ndarray, method: np.ndarray, status: np.ndarray,
                    reason: np.ndarray, amount_cents: np.ndarray, ms: np.ndarray) -> pa.Table:
    n = int(attempt.shape[0])
    if parent_kind not in ("receipt", "order"):
        raise ValueError(f"parent_kind must be 'receipt' or 'order', not {parent_kind!r}")
    nulls = pa.nulls(n, pa.string())
    txn_id = join_strings(["TXN", txn_parent, "-", pa.array(attempt, pa.int64()).cast(pa.string())],
                          n)
    return pa.table({
        "TransactionId": txn_id,
        "EventTS": ts_array(ts_us),
        "ReceiptId": parent_ids if parent_kind == "receipt" else nulls,
        "OrderId": parent_ids if parent_kind == "order" else nulls,
        "StoreID": (pa.nulls(n, pa.int64()) if store_id is None
                    else pa.array(np.asarray(store_id, dtype=np.int64), pa.int64())),
        "CustomerID": pa.array(np.asarray(customer_id, dtype=np.int64), pa.int64()),
        "TenderType": dict_strings(method, domain.PAYMENT_METHODS),
        "Attempt": pa.array(attempt.astype(np.int16), pa.int16()),
        "Status": dict_strings(status, PAYMENT_STATUSES),
        "DeclineReason": dict_strings(reason, domain.DECLINE_REASONS, mask=status != DECLINED),
        "Amount": money.cents_to_decimal(amount_cents),
        "AmountCents": pa.array(np.asarray(amount_cents, dtype=np.int64), pa.int64()),
        "ProcessingTimeMs": pa.array(np.asarray(ms).astype(np.int32), pa.int32()),
    })


def build_payments(draws: PaymentDraws, parent_ids: pa.Array, parent_ts_us: np.ndarray,
                   total_cents: np.ndarray, customer_id: np.ndarray,
                   store_id: np.ndarray | None, parent_kind: Literal["receipt", "order"],
                   valid_mask: np.ndarray | None = None) -> tuple[pa.Table, np.ndarray]:
    """``fact_payments`` rows of the valid parents (fact-tables.md §13).

    ``event_ts₁ = parent_ts + ms₁`` and ``event_ts₂ = event_ts₁ + ms₂`` (ms → µs); the amount is
    the parent's total on every attempt; the transaction id is ``TXN`` + parent id + ``-`` +
    attempt. Rows are in parent order, then attempt.

    Args:
        draws: From :func:`draw_payment_attempts`, one entry per parent (valid or not).
        parent_ids: string (n,) receipt or order ids.
        parent_ts_us: int64 (n,) parent event time. total_cents: int64 (n,).
        customer_id: int64 (n,). store_id: int64 (n,), or None for NULL (online).
        parent_kind: ``"receipt"`` fills ReceiptId, ``"order"`` fills OrderId.
        valid_mask: bool (n,), parents that get payment rows (e.g. orders that are written and
            not cancelled); None = all.

    Returns:
        ``(table, approved_method_code)``: the Gen-column table and int64 (n,) the approved method
        of every parent (meaningful for the valid ones).
    """
    parent_ids = _as_array(parent_ids)
    n = len(parent_ids)
    valid = np.ones(n, dtype=bool) if valid_mask is None else np.asarray(valid_mask, dtype=bool)
    first = np.flatnonzero(valid)
    second = first[draws.declined[first]]
    parent = np.concatenate([first, second])
    attempt = np.concatenate([np.ones(first.size, np.int64), np.full(second.size, 2, np.int64)])
    order = np.lexsort((attempt, parent))
    parent, attempt = parent[order], attempt[order]
    retry = attempt == 2
    ts1 = np.asarray(parent_ts_us, dtype=np.int64)[parent] + draws.ms1[parent] * _US_PER_MS
    ts = np.where(retry, ts1 + draws.ms2[parent] * _US_PER_MS, ts1)
    status = np.where(retry | ~draws.declined[parent], APPROVED, DECLINED)
    take = pa.array(parent, pa.int64())
    ids = parent_ids.take(take)
    table = _payments_table(
        ids, attempt, ts, ids, parent_kind,
        None if store_id is None else np.asarray(store_id)[parent],
        np.asarray(customer_id)[parent],
        np.where(retry, draws.method2[parent], draws.method1[parent]), status,
        draws.reason[parent], np.asarray(total_cents, dtype=np.int64)[parent],
        np.where(retry, draws.ms2[parent], draws.ms1[parent]),
    )
    return table, draws.approved_method


def build_refunds(parent_ids: pa.Array, ts_us: np.ndarray, total_cents: np.ndarray,
                  method_codes: np.ndarray, ms: np.ndarray, customer_id: np.ndarray,
                  store_id: np.ndarray | None, parent_kind: Literal["receipt", "order"] = "receipt",
                  txn_parent: pa.Array | None = None) -> pa.Table:
    """One REFUNDED row (attempt 1) per RETURN receipt or returned online order (behaviour.md §8).

    Args:
        parent_ids: string (n,) RET ids (or order ids). ts_us: int64 (n,) return times.
        total_cents: int64 (n,) the return totals (negative). method_codes: int (n,) the
            original approved method. ms: int64 (n,) processing ms (event_ts = ts + ms).
        customer_id: int64 (n,). store_id: int64 (n,) or None for NULL.
        parent_kind: Whether ``parent_ids`` are receipts or orders.
        txn_parent: What the transaction id is built from (default ``parent_ids``); an order's
            refund needs its own, apart from the order's payment attempts.
    """
    parent_ids = _as_array(parent_ids)
    n = len(parent_ids)
    ms = np.asarray(ms, dtype=np.int64)
    return _payments_table(
        parent_ids if txn_parent is None else _as_array(txn_parent), np.ones(n, dtype=np.int64),
        np.asarray(ts_us, dtype=np.int64) + ms * _US_PER_MS, parent_ids, parent_kind, store_id,
        customer_id, np.asarray(method_codes, dtype=np.int64),
        np.full(n, REFUNDED, dtype=np.int64), np.zeros(n, dtype=np.int64),
        np.asarray(total_cents, dtype=np.int64), ms,
    )


class PaymentsMixin:
    """Payments of the in-store SALE receipts.

    This mixin defines the following functionality:

    Adds:
        ``_generate_payments`` (the ``fact_payments`` rows of SALE receipts and each receipt's
        approved method). Online orders and returns call :func:`draw_payment_attempts`,
        :func:`build_payments` and :func:`build_refunds` directly.
    Reads:
        ``_seed``, ``_master.stores``, ``_for_each_store``.
    Writes:
        nothing on self.
    Streams:
        ``payment.instore`` (per store).
    """

    def _generate_payments(self, ctx: DayContext, parents: SaleMoney
                           ) -> tuple[pa.Table, np.ndarray]:
        """Payments of the day's SALE receipts.

        Args:
            parents: The receipts' money (:class:`SaleMoney`); receipts are in store, then seq
                order, which is the item order of each store's ``payment.instore`` stream.

        Returns:
            ``(payments, tender_codes)``: the ``fact_payments`` batch and int64 (n_receipts,)
            approved method per receipt (into ``domain.PAYMENT_METHODS``).
        """
        sl = parents.lines
        store_ids = self._master.stores.store_id
        bounds = np.searchsorted(sl.store_idx, np.arange(store_ids.shape[0] + 1))

        def one_store(i: int) -> PaymentDraws:
            n = int(bounds[i + 1] - bounds[i])
            gen = rng.stream(self._seed, "payment.instore", ctx.day, int(store_ids[i]))
            return draw_payment_attempts(gen, n, "instore")

        draws = PaymentDraws.concat(self._for_each_store(one_store) if sl.n_receipts else [])
        return build_payments(draws, sl.receipt_id, sl.ts_us, parents.total, sl.customer_id,
                              sl.store_id, "receipt")


__all__ = [
    "PAYMENT_STATUSES",
    "PROCESSING_MS",
    "TENDER_MIX",
    "PaymentDraws",
    "PaymentsMixin",
    "build_payments",
    "build_refunds",
    "draw_payment_attempts",
]
