"""Marketing campaigns and their ad impressions (behaviour.md §13, fact-tables.md §10 and §21).

Each day may start one campaign (stream ``marketing.campaign``). Every campaign active on the
day gets its impression count from its type and the day's boost, capped for the whole day by
largest remainder, and split evenly over its channels. The impressions themselves are drawn in
(campaign_id, channel position, index) order from stream ``marketing.impressions``.

Campaign state travels between days as the ``gen_state_campaigns`` columns (campaign_id,
campaign_type, start_date, end_date); see :data:`CAMPAIGNS_SCHEMA`.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retail_datagen import calendar, domain, money
from retail_datagen.db import schema
from retail_datagen.rng import categorical, stream

from .day_types import DayContext
from .utils_mixin import (
    EPOCH_ORDINAL,
    Digits,
    day_start_us,
    day_tag,
    dict_strings,
    fixed_width_strings,
    generator_schema,
    join_strings,
    nullable_int,
    ts_array,
)

CAMPAIGNS_SCHEMA = schema.carried_schema("gen_state_campaigns")

MARKETING_SCHEMA = generator_schema("marketing")

CAMPAIGN_START_P = 0.90
#: Channels of each campaign type (domain.CAMPAIGN_TYPES order), as names.
CAMPAIGN_CHANNELS: tuple[tuple[str, ...], ...] = (
    ("FACEBOOK", "GOOGLE", "EMAIL"),
    ("INSTAGRAM", "YOUTUBE", "DISPLAY"),
    ("EMAIL", "SOCIAL"),
    ("SOCIAL", "SEARCH"),
)
CAMPAIGN_DAYS_ACTIVE = np.array([7, 14, 30, 1], dtype=np.int64)
CAMPAIGN_DAILY_IMPRESSIONS = np.array([1000, 2000, 500, 5000], dtype=np.int64)
_MAX_CHANNELS = max(len(c) for c in CAMPAIGN_CHANNELS)
#: (type, channel position) → index into domain.MARKETING_CHANNELS, −1 past the type's channels.
CAMPAIGN_CHANNEL_CODES = np.array(
    [[domain.MARKETING_CHANNELS.index(ch) for ch in chans] + [-1] * (_MAX_CHANNELS - len(chans))
     for chans in CAMPAIGN_CHANNELS],
    dtype=np.int64,
)
CAMPAIGN_N_CHANNELS = np.array([len(c) for c in CAMPAIGN_CHANNELS], dtype=np.int64)
#: Position of each channel (domain.MARKETING_CHANNELS order) when channel names are sorted.
_CHANNEL_NAME_RANK = np.argsort(np.argsort(np.array(domain.MARKETING_CHANNELS), kind="stable"))

DEVICE_P = (0.6, 0.3, 0.1)  # domain.DEVICES order: MOBILE, DESKTOP, TABLET
CUSTOMER_ID_P = 0.05
_DAY_US = 86_400_000_000


def campaign_type_weights(day: date) -> np.ndarray:
    """Start weights over domain.CAMPAIGN_TYPES for the month of ``day``."""
    if day.month in (11, 12):
        return np.array([3.0, 1.0, 2.0, 4.0])
    if day.month in (8, 9):
        return np.array([2.0, 3.0, 1.0, 2.0])
    return np.ones(4)


def marketing_boost_tenths(boost: float) -> int:
    """B = 10 × boost as an integer (25, 17, 15 or 10)."""
    return int(money.round_half_up(10.0 * float(boost)))


def empty_campaigns_table() -> pa.Table:
    """A campaigns state with no rows."""
    return CAMPAIGNS_SCHEMA.empty_table()


def _date32(day: date) -> int:
    return day.toordinal() - EPOCH_ORDINAL


def start_marketing_campaign(
    day: date, campaigns: pa.Table | None, rng: np.random.Generator
) -> pa.Table:
    """The campaigns active on ``day``: the carried-in ones plus one that may start today.

    Stream ``marketing.campaign`` (shard 0, one item): start coin (p 0.90), then the type
    (categorical over the month's weights). Both are always drawn.

    Args:
        day: the simulated day D.
        campaigns: ``gen_state_campaigns`` rows at the start of D (or None for none).
        rng: the ``marketing.campaign`` stream of D.

    Returns:
        Rows with start_date ≤ D ≤ end_date, sorted by campaign_id, in :data:`CAMPAIGNS_SCHEMA`.
    """
    starts = bool(rng.random(1)[0] < CAMPAIGN_START_P)
    type_code = int(categorical(rng, campaign_type_weights(day), 1)[0])
    current = empty_campaigns_table() if campaigns is None else campaigns.select(
        CAMPAIGNS_SCHEMA.names).cast(CAMPAIGNS_SCHEMA)
    d32 = _date32(day)
    start = current.column("start_date").cast(pa.int32()).to_numpy(zero_copy_only=False)
    end = current.column("end_date").cast(pa.int32()).to_numpy(zero_copy_only=False)
    new_id = "CMP" + day_tag(day) + "01"
    keep = (start <= d32) & (end >= d32)
    if starts:
        keep &= pc.not_equal(current.column("campaign_id"), new_id).to_numpy(
            zero_copy_only=False).astype(bool)
    current = current.filter(pa.array(keep, pa.bool_()))
    if starts:
        end_day = day + timedelta(days=int(CAMPAIGN_DAYS_ACTIVE[type_code]) - 1)
        new = pa.table(
            {
                "campaign_id": [new_id],
                "campaign_type": [domain.CAMPAIGN_TYPES[type_code]],
                "start_date": pa.array([_date32(day)], pa.int32()).cast(pa.date32()),
                "end_date": pa.array([_date32(end_day)], pa.int32()).cast(pa.date32()),
            },
            schema=CAMPAIGNS_SCHEMA,
        )
        current = pa.concat_tables([current, new])
    return current.sort_by("campaign_id").combine_chunks()


def campaigns_after_day(day: date, active: pa.Table) -> pa.Table:
    """The ``gen_state_campaigns`` rows to carry into D + 1: end_date ≥ D + 1, by campaign_id."""
    end = active.column("end_date").cast(pa.int32()).to_numpy(zero_copy_only=False)
    kept = active.filter(pa.array(end >= _date32(day) + 1, pa.bool_()))
    return kept.sort_by("campaign_id").cast(CAMPAIGNS_SCHEMA).combine_chunks()


def marketing_impression_counts(
    type_codes: np.ndarray, boost_tenths: int, impressions_per_day: int
) -> np.ndarray:
    """Impressions per active campaign after the daily cap (behaviour.md §13).

    ``n = max(100 × channels, daily × B // 10)``; if Σn exceeds
    ``cap = max(1000, impressions_per_day × clamp(B, 5, 20) // 10)``, campaign c gets
    ``n_c × cap // Σn`` plus one of the leftover units for each of the largest remainders
    (ties to the lower campaign_id, i.e. the lower index).

    Args:
        type_codes: int64 (c,) indices into domain.CAMPAIGN_TYPES, campaigns by campaign_id.
        boost_tenths: B.
        impressions_per_day: ``volume.marketing_impressions_per_day``.
    """
    codes = np.asarray(type_codes, dtype=np.int64)
    n = np.maximum(100 * CAMPAIGN_N_CHANNELS[codes],
                   CAMPAIGN_DAILY_IMPRESSIONS[codes] * int(boost_tenths) // 10)
    cap = max(1000, int(impressions_per_day) * min(max(int(boost_tenths), 5), 20) // 10)
    total = int(n.sum())
    if total > cap:
        n = money.largest_remainder(cap, n)
    return n.astype(np.int64)


def split_impressions_by_channel(counts: np.ndarray, type_codes: np.ndarray) -> np.ndarray:
    """Impressions per (campaign, channel position), shape (c, 3); earlier channels get the rest.

    Positions past a type's channels hold 0.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_ch = CAMPAIGN_N_CHANNELS[np.asarray(type_codes, dtype=np.int64)]
    pos = np.arange(_MAX_CHANNELS, dtype=np.int64)[None, :]
    per = counts[:, None] // n_ch[:, None] + (pos < (counts % n_ch)[:, None])
    return np.where(pos < n_ch[:, None], per, 0)


def marketing_cost_arrays(cost_config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cost min, cost max) per domain.MARKETING_CHANNELS entry and the multiplier per device.

    Args:
        cost_config: a :class:`~retail_datagen.config.models.MarketingCostConfig`.
    """
    names = [ch.lower() for ch in domain.MARKETING_CHANNELS]
    cmin = np.array([getattr(cost_config, f"{c}_cost_min") for c in names], dtype=np.float64)
    cmax = np.array([getattr(cost_config, f"{c}_cost_max") for c in names], dtype=np.float64)
    dev = np.array(
        [getattr(cost_config, f"{d.lower()}_multiplier") for d in domain.DEVICES],
        dtype=np.float64,
    )
    return cmin, cmax, dev


def marketing_impressions_table(
    day: date,
    active: pa.Table,
    boost_tenths: int,
    impressions_per_day: int,
    ad_ids: pa.Array,
    cost_min: np.ndarray,
    cost_max: np.ndarray,
    device_mult: np.ndarray,
    rng: np.random.Generator,
) -> pa.Table:
    """The ``marketing`` batch of one day, rows in ImpressionId order.

    Stream ``marketing.impressions`` (shard 0); items are the impressions by (campaign_id,
    channel position, index); kinds: customer U{1..total_customers}, device (categorical),
    cost U(min, max), time U{0..86,399,999,999} µs, variant U{1..3}, customer_id coin (p 0.05).
    The ImpressionId seq follows (event_ts, campaign_id, channel name, draw index).

    Args:
        day: the simulated day D.
        active: the campaigns active on D, sorted by campaign_id (:func:`start_marketing_campaign`).
        boost_tenths: B (:func:`marketing_boost_tenths`).
        impressions_per_day: ``volume.marketing_impressions_per_day``.
        ad_ids: string array of ``dim_customers.ad_id`` indexed by customer_id − 1; its length is
            the number of customers.
        cost_min, cost_max: float64 (8,) cost bounds per domain.MARKETING_CHANNELS entry.
        device_mult: float64 (3,) cost multiplier per domain.DEVICES entry.
        rng: the ``marketing.impressions`` stream of D.
    """
    type_codes = pc.index_in(
        active.column("campaign_type").combine_chunks(),
        value_set=pa.array(list(domain.CAMPAIGN_TYPES)),
    ).to_numpy(zero_copy_only=False).astype(np.int64)
    counts = marketing_impression_counts(type_codes, boost_tenths, impressions_per_day)
    per_cell = split_impressions_by_channel(counts, type_codes).reshape(-1)
    cell = np.repeat(np.arange(per_cell.size, dtype=np.int64), per_cell)
    camp = cell // _MAX_CHANNELS
    pos = cell % _MAX_CHANNELS
    channel = CAMPAIGN_CHANNEL_CODES[type_codes[camp], pos]
    n = int(cell.size)
    total_customers = len(ad_ids)

    customer = rng.integers(1, total_customers + 1, n)
    device = categorical(rng, DEVICE_P, n)
    lo, hi = cost_min[channel], cost_max[channel]
    cost_usd = lo + (hi - lo) * rng.random(n)
    offset = rng.integers(0, _DAY_US - 1 + 1, n)
    variant = rng.integers(1, 3 + 1, n)
    with_customer = rng.random(n) < CUSTOMER_ID_P
    cost_cents = np.maximum(1, money.round_half_up(cost_usd * device_mult[device] * 100))

    order = np.lexsort((np.arange(n), _CHANNEL_NAME_RANK[channel], camp, offset))
    camp, pos, channel, customer = camp[order], pos[order], channel[order], customer[order]
    device, offset, variant = device[order], offset[order], variant[order]
    with_customer, cost_cents = with_customer[order], np.asarray(cost_cents)[order]

    campaign_ids = active.column("campaign_id").combine_chunks()
    creative_prefix = join_strings(["CRV", pc.utf8_slice_codeunits(campaign_ids, 3)],
                                   len(campaign_ids))
    rows = pa.array(camp, pa.int64())
    creative = join_strings(
        [creative_prefix.take(rows), pc.cast(pa.array((pos + 1) * 10 + variant), pa.string())], n
    )
    impression = fixed_width_strings(
        ["IMP" + day_tag(day), Digits(np.arange(1, n + 1), 9, "impression seq")], n
    )
    return pa.Table.from_arrays(
        [
            impression,
            ts_array(day_start_us(day) + offset),
            campaign_ids.take(rows).cast(pa.string()),
            active.column("campaign_type").combine_chunks().take(rows).cast(pa.string()),
            creative,
            dict_strings(channel, domain.MARKETING_CHANNELS),
            dict_strings(device, domain.DEVICES),
            ad_ids.take(pa.array(customer - 1, pa.int64())).cast(pa.string()),
            nullable_int(customer, ~with_customer),
            money.cents_to_decimal(cost_cents),
            pa.array(cost_cents, pa.int64()),
        ],
        schema=MARKETING_SCHEMA,
    )


class MarketingMixin:
    """Marketing campaigns and ad impressions.

    This mixin defines the following functionality:

    Adds:
        ``_compute_marketing_multiplier`` and ``_generate_marketing_activity`` (table
        ``marketing`` and the next campaigns state).
    Reads:
        ``_seed``, ``config.volume.marketing_impressions_per_day``, ``config.marketing_cost``,
        ``_master.customers.ad_id``.
    Writes:
        nothing on self; the campaigns state (``gen_state_campaigns``) is returned to the driver.
    Streams:
        ``marketing.campaign`` and ``marketing.impressions`` (shard 0).
    """

    def _compute_marketing_multiplier(self, day: date) -> float:
        """The day's marketing boost (behaviour.md §13)."""
        return calendar.marketing_boost(day)

    def _generate_marketing_activity(
        self, ctx: DayContext, campaigns: pa.Table | None
    ) -> tuple[pa.Table, pa.Table]:
        """The day's impressions and the campaigns state to carry into the next day.

        Args:
            ctx: the day.
            campaigns: ``gen_state_campaigns`` rows active at the start of the day (None: none).

        Returns:
            ``(marketing batch, campaigns with end_date ≥ D + 1)``; the state is sorted by
            campaign_id and has the input's schema (:data:`CAMPAIGNS_SCHEMA` when None).
        """
        day = ctx.day
        active = start_marketing_campaign(
            day, campaigns, stream(self._seed, "marketing.campaign", day, 0)
        )
        cost_min, cost_max, device_mult = marketing_cost_arrays(self.config.marketing_cost)
        impressions = marketing_impressions_table(
            day,
            active,
            marketing_boost_tenths(self._compute_marketing_multiplier(day)),
            self.config.volume.marketing_impressions_per_day,
            self._master.customers.ad_id,
            cost_min,
            cost_max,
            device_mult,
            stream(self._seed, "marketing.impressions", day, 0),
        )
        state = campaigns_after_day(day, active)
        if campaigns is not None:
            state = state.cast(campaigns.select(CAMPAIGNS_SCHEMA.names).schema)
        return impressions, state


__all__ = [
    "CAMPAIGNS_SCHEMA",
    "MARKETING_SCHEMA",
    "MarketingMixin",
    "campaign_type_weights",
    "campaigns_after_day",
    "empty_campaigns_table",
    "marketing_boost_tenths",
    "marketing_cost_arrays",
    "marketing_impression_counts",
    "marketing_impressions_table",
    "split_impressions_by_channel",
    "start_marketing_campaign",
]
