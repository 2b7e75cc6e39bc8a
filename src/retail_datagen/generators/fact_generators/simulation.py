"""The daily pipeline of behaviour.md §15 over one set of static inputs.

A :class:`DaySimulation` holds read-only inputs only: the config, the dimensions and customer
pools (of the whole network, or of one unit's view, sharding.md §1), and which unit it is. Its
``_generate_day`` reads as the ten steps of behaviour.md §15, each one call to one mixin
method, and returns the day's batches and the next state; it writes nothing and keeps nothing
between days, so any executor may run it for any unit in any process.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from typing import ClassVar, TypeVar

import numpy as np
import pyarrow as pa

from retail_datagen import calendar, domain
from retail_datagen.config.models import RetailConfig
from retail_datagen.db import schema
from retail_datagen.db.contract import TRACE_ID
from retail_datagen.generators.fact_generators.data_loading_mixin import MasterData, StorePools
from retail_datagen.generators.fact_generators.day_types import (
    DayContext,
    DayResult,
    InventoryEvents,
    StateWrites,
    config_metadata_rows,
)
from retail_datagen.generators.fact_generators.inventory_mixin import (
    InventoryMixin,
    balance_before,
)
from retail_datagen.generators.fact_generators.logistics_mixin import LogisticsMixin
from retail_datagen.generators.fact_generators.marketing_mixin import (
    MARKETING_SCHEMA,
    MarketingMixin,
)
from retail_datagen.generators.fact_generators.online_orders_mixin import OnlineOrdersMixin
from retail_datagen.generators.fact_generators.payments_mixin import PaymentsMixin
from retail_datagen.generators.fact_generators.promotions_mixin import PromotionsMixin
from retail_datagen.generators.fact_generators.receipts_mixin import ReceiptsMixin
from retail_datagen.generators.fact_generators.returns_mixin import ReturnsMixin
from retail_datagen.generators.fact_generators.seasonal_mixin import (
    SeasonalMixin,
    product_keyword_groups,
)
from retail_datagen.generators.fact_generators.sensors_mixin import SensorsMixin
from retail_datagen.generators.fact_generators.state import (
    CarriedState,
    LegLines,
    Legs,
    initial_inventory_rows,
    initial_state,
    inventory_rows,
    leg_lines_table,
    legs_table,
    supplier_orders_table,
    trucks_table,
)
from retail_datagen.generators.fact_generators.stockouts_mixin import StockoutsMixin
from retail_datagen.generators.fact_generators.store_ops_mixin import StoreOpsMixin
from retail_datagen.generators.fact_generators.units import NETWORK_UNIT, store_units_by_id
from retail_datagen.generators.fact_generators.utils_mixin import (
    US_PER_HOUR,
    UtilsMixin,
    day_start_us,
)
from retail_datagen.generators.fact_generators.zone_changes_mixin import ZoneChangesMixin
from retail_datagen.streaming.outbox_rows import build_outbox_rows

T = TypeVar("T")
SUPPLIER_TRUCK = domain.TRUCK_TYPES.index("SUPPLIER")


class DaySimulation(
    InventoryMixin,
    LogisticsMixin,
    MarketingMixin,
    OnlineOrdersMixin,
    PaymentsMixin,
    PromotionsMixin,
    ReceiptsMixin,
    ReturnsMixin,
    SeasonalMixin,
    SensorsMixin,
    StockoutsMixin,
    StoreOpsMixin,
    ZoneChangesMixin,
    UtilsMixin,
):
    """The generation mixins over fixed inputs: one simulated day at a time.

    Attributes (the shared state every generation mixin reads; none changes during a day):
        config: the :class:`~retail_datagen.config.models.RetailConfig`.
        _seed: ``config.seed``; every stream is keyed by it.
        _master: :class:`~.data_loading_mixin.MasterData`: the network's, or a unit's view.
        _pools: :class:`~.data_loading_mixin.StorePools` of the same stores.
        _keyword_groups: bool (n_products, n_groups), the holiday keyword matches of every
            product (``seasonal_mixin.product_keyword_groups``).
        _unit: the unit whose view ``_master`` holds, or None for the whole network.
        _network_stores: the network's store count (cycle counts draw over all stores).
        _included_tables: logical fact names to return.
        _publish_outbox: whether the day also builds outbox events (and TraceId columns).
        _store_workers: threads for per-store work inside a day (1 in worker processes).
    """

    FACT_TABLES: ClassVar[tuple[str, ...]] = schema.FACT_TABLES

    def __init__(self, config: RetailConfig, master: MasterData, pools: StorePools, *,
                 unit: int | None = None, network_stores: int | None = None,
                 included_tables: frozenset[str] | set[str] | None = None,
                 publish_outbox: bool = False, keyword_groups: np.ndarray | None = None,
                 store_workers: int = 1, day_cache: dict | None = None) -> None:
        self.config = config
        self._seed = config.seed
        self._master = master
        self._pools = pools
        self._unit = unit
        self._network_stores = (network_stores if network_stores is not None
                                else len(master.stores.store_id))
        self._included_tables = set(self.FACT_TABLES if included_tables is None
                                    else included_tables)
        self._publish_outbox = publish_outbox
        self._keyword_groups = (product_keyword_groups(master.products)
                                if keyword_groups is None else keyword_groups)
        self._store_workers = store_workers
        # Day-level values shared by the simulations of one process (see ``_per_day``).
        self._day_cache = {} if day_cache is None else day_cache

    def _generate_day(self, day: date, carried: CarriedState | None) -> DayResult:
        """One simulated day, step by step as in behaviour.md §15. Writes nothing."""
        master = self._master
        # 1. Calendar factors.
        ctx = self._day_context(day)
        first_day = carried is None
        state = self._initial_state(day) if first_day else carried.copy()
        store_start = state.store_on_hand.copy()
        transit_start = state.store_in_transit.copy()
        dc_start = state.dc_on_hand.copy()
        order_start = state.dc_on_order.copy()

        # 2. Carry-in: legs completing today, supplier arrivals, returns due, campaigns.
        inbound = self._process_truck_deliveries(ctx, state.legs, state.leg_lines)
        supplier_in, state.supplier_orders = self._receive_supplier_orders(
            ctx, state.supplier_orders, state.dc_on_order)
        pending = state.pending_returns
        due = self._returns_due(ctx, pending)

        # 3. Marketing.
        if self._unit in (None, NETWORK_UNIT):
            marketing, state.campaigns = self._generate_marketing_activity(ctx,
                                                                           state.campaigns)
        else:  # marketing belongs to the network unit
            marketing = MARKETING_SCHEMA.empty_table()

        # 4. Per store: visits, customers, candidate baskets, promotion decisions, returns
        #    and cycle counts.
        visits = self._generate_store_hour_activity(ctx)
        candidates = self._build_candidate_baskets(ctx, visits)
        promo_codes = self._decide_promotions(ctx, visits, candidates)
        sale_requests = self._sale_requests(ctx, visits, candidates)
        returns = self._generate_returns(ctx, due)
        adjustments = self._generate_store_adjustments(ctx, sale_requests)

        # 5. Online candidate orders.
        online = self._generate_online_orders(ctx)

        # 6. Store streams for the whole day; the reorder check sees the 23:00 balances.
        store_events, store_part = InventoryEvents.concat_named({
            "sales": sale_requests, "online": online.store_events,
            "returns": returns.store_events, "inbound": inbound, "adjustments": adjustments})
        store_order, store_resolved = self._resolve_inventory(store_events,
                                                              state.store_on_hand)
        at_2300 = ctx.day_start_us + 23 * US_PER_HOUR
        on_hand_2300 = balance_before(store_events, store_order, store_resolved, store_start,
                                      at_2300)
        transit_2300 = self._in_transit_at(transit_start, inbound, at_2300)

        # 7. DC streams up to 23:00, allocation, legs and trucks, the rest of the DC day, then
        #    supplier orders from the end-of-day balances.
        dc_requests, dc_part = InventoryEvents.concat_named({
            "supplier": supplier_in, "online": online.dc_events})
        dc_2300 = self._dc_balance_at_allocation(ctx, dc_requests, dc_start)
        reorders, outbound, new_legs, new_lines = self._generate_truck_movements(
            ctx, on_hand_2300, transit_2300, state.store_rp, dc_2300, state.truck_available)
        dc_events = InventoryEvents.concat([dc_requests, outbound])
        _, dc_resolved = self._resolve_inventory(dc_events, state.dc_on_hand)
        state.supplier_orders = self._order_supplier_stock(
            ctx, state.dc_on_hand, state.dc_on_order, state.dc_rp, state.supplier_orders)

        # 8. Finalise receipts and online orders; schedule returns.
        sale_lines = self._finalize_sale_lines(ctx, visits, candidates,
                                               -store_resolved.applied[store_part["sales"]])
        discount, promo_idx, promotions, promo_lines = self._apply_promotions(ctx, promo_codes,
                                                                              sale_lines)
        money = self._sale_money(ctx, sale_lines, discount)
        payments, tenders = self._generate_payments(ctx, money)
        receipts, receipt_lines = self._create_receipt(ctx, sale_lines, money, promo_idx,
                                                       tenders)
        new_pending = self._schedule_returns(ctx, receipts, receipt_lines)
        headers, online_lines, online_payments = self._finalize_online_orders(
            ctx, online, -store_resolved.applied[store_part["online"]],
            -dc_resolved.applied[dc_part["online"]])
        new_pending = self._with_online_returns(ctx, new_pending, headers, online_lines)

        # 9. Sensors, zone changes, store ops; truck rows that fall on the day.
        legs = Legs.concat(state.legs, new_legs)
        leg_lines = LegLines.concat(state.leg_lines, new_lines)
        truck_moves, truck_inventory = self._process_truck_lifecycle(ctx, legs, leg_lines)
        wanted = self._included_tables
        sensors = bool(wanted & {"ble_pings", "customer_zone_changes"})
        pings, zone_changes = (self._generate_ble_pings_and_zone_changes(ctx, visits)
                               if sensors else (None, None))
        parts: dict[str, list[pa.Table]] = {
            "dc_inventory_txn": [self._generate_dc_inventory_transactions(ctx, dc_events,
                                                                          dc_resolved)],
            "truck_moves": [truck_moves],
            "truck_inventory": [truck_inventory],
            "store_inventory_txn": [self._store_inventory_transactions(ctx, store_events,
                                                                       store_resolved)],
            "receipts": [receipts, returns.receipts],
            "receipt_lines": [receipt_lines, returns.receipt_lines],
            "marketing": [marketing],
            "online_orders": [headers],
            "online_order_lines": [online_lines],
            "fact_payments": [payments, online_payments, returns.payments],
            "stockouts": [self._detect_stockouts(day, (store_events, store_resolved),
                                                 (dc_events, dc_resolved))],
            "promotions": [promotions],
            "promo_lines": [promo_lines],
            "reorders": [reorders],
        }
        if "foot_traffic" in wanted:
            parts["foot_traffic"] = [self._generate_foot_traffic(ctx, visits)]
        if "store_ops" in wanted:
            parts["store_ops"] = [self._generate_store_ops(ctx)]
        if sensors:
            parts["ble_pings"] = [pings]
            parts["customer_zone_changes"] = [zone_changes]

        # 10. Carry the state forward, then the batches, outbox and state rows to write.
        self._in_transit_after_day(state.store_in_transit, inbound, new_legs, new_lines)
        state.legs, state.leg_lines = self._open_legs_after_day(ctx, legs, leg_lines)
        state.pending_returns = self._pending_returns_after_day(ctx, pending, new_pending)
        batches = {name: tables for name, tables in parts.items() if name in wanted}
        if self._publish_outbox:
            batches = {name: [self._with_trace_ids(name, t) for t in tables]
                       for name, tables in batches.items()}
        outbox = self._build_day_outbox(day, batches) if self._publish_outbox else None
        store_dc = master.stores.dc_id
        unit_of_store = store_units_by_id(master.stores)
        writes = StateWrites(
            inventory=inventory_rows(
                state, master.stores.store_id, store_dc, master.dcs.dc_id,
                None if first_day else (state.store_on_hand != store_start)
                | (state.store_in_transit != transit_start),
                None if first_day else (state.dc_on_hand != dc_start)
                | (state.dc_on_order != order_start)),
            initial_inventory=initial_inventory_rows(
                replace(state, store_on_hand=store_start, dc_on_hand=dc_start),
                master.stores.store_id, store_dc, master.dcs.dc_id) if first_day else None,
            shipments=legs_table(state.legs),
            shipment_lines=leg_lines_table(state.leg_lines),
            trucks=trucks_table(master.trucks.truck_id, master.trucks.dc_id,
                                state.truck_available, master.trucks.type_code != SUPPLIER_TRUCK),
            supplier_orders=supplier_orders_table(state.supplier_orders),
            campaigns=schema.with_unit("gen_state_campaigns", state.campaigns, 0),
            new_pending_returns=schema.with_unit(
                "gen_state_pending_returns", new_pending,
                unit_of_store[new_pending.column("store_id").to_numpy() - 1]),
            first_day=state.first_day,
            config_rows=config_metadata_rows(self.config) if first_day else None,
        )
        return DayResult(batches, state, writes, outbox)

    def _initial_state(self, day: date) -> CarriedState:
        store_on_hand, store_rp, dc_on_hand, dc_rp = self._initial_inventory_state(day)
        return initial_state(day, store_on_hand, store_rp, dc_on_hand, dc_rp,
                             len(self._master.trucks.truck_id))

    def _with_trace_ids(self, name: str, batch: pa.Table) -> pa.Table:
        inverse = {db: gen for gen, db in schema.GENERATOR_NAMES[name].items()}
        keys = [batch.column(inverse[col]).combine_chunks()
                for col in schema.primary_key(name)]
        return batch.append_column(TRACE_ID, self._generate_trace_id(name, keys))

    def _build_day_outbox(self, day: date, batches: dict[str, list[pa.Table]]) -> pa.Table:
        from retail_datagen.streaming.outbox import assign_outbox_ids

        rows = [build_outbox_rows(name, t)
                for name in self.FACT_TABLES if name in batches for t in batches[name]]
        return assign_outbox_ids(day, rows, store_units_by_id(self._master.stores))

    def _day_context(self, day: date) -> DayContext:
        """Step 1: the calendar factors of ``day`` for every store and hour."""
        stores = self._master.stores
        closed = calendar.is_store_closed(day)
        weather = calendar.WEATHER_MULT[calendar.draw_weather(self._seed, day)]
        promo = calendar.draw_promo_events(self._seed, day, stores.store_id)
        mult = calendar.store_hour_multiplier(day, weather[stores.region_code], promo)
        hours = np.arange(24)
        open_mask = (hours[None, :] >= stores.open_hour[:, None]) & (
            hours[None, :] < stores.close_hour[:, None])
        if closed:
            open_mask[:] = False
        season = calendar.season_multiplier(day)
        holiday = calendar.holiday_multiplier(day)
        return DayContext(
            day=day, day_start_us=day_start_us(day), closed=closed, season=season,
            holiday=holiday, dow=calendar.dow_multiplier(day), seasonal=season * holiday,
            weather_by_region=weather, store_hour_mult=mult, open_mask=open_mask,
            available=self._get_available_products_for_date(day),
        )

    def _for_each_store(self, fn: Callable[[int], T]) -> list[T]:
        """``fn(store_index)`` for every store, on the generation workers, in store order.

        Each store draws only from its own streams, so the result never depends on the
        number of workers.
        """
        n = len(self._master.stores.store_id)
        workers = self._store_workers
        if workers <= 1 or n <= 1:
            return [fn(i) for i in range(n)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, range(n)))


__all__ = ["SUPPLIER_TRUCK", "DaySimulation"]
