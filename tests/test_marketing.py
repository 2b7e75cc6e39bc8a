"""Tests of marketing campaigns and impressions (behaviour.md §13, fact-tables.md §10 and §21)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from retail_datagen import domain, money
from retail_datagen.config.models import MarketingCostConfig
from retail_datagen.generators.fact_generators.marketing_mixin import (
    CAMPAIGN_CHANNELS,
    CAMPAIGN_DAYS_ACTIVE,
    CAMPAIGNS_SCHEMA,
    MARKETING_SCHEMA,
    campaign_type_weights,
    campaigns_after_day,
    empty_campaigns_table,
    marketing_boost_tenths,
    marketing_cost_arrays,
    marketing_impression_counts,
    marketing_impressions_table,
    split_impressions_by_channel,
    start_marketing_campaign,
)
from retail_datagen.generators.fact_generators.utils_mixin import US_PER_DAY, day_start_us
from retail_datagen.rng import stream
from sensor_fixtures import SensorHost, make_customers, make_day_context

TYPES = {name: i for i, name in enumerate(domain.CAMPAIGN_TYPES)}


def _campaigns(rows: list[tuple[str, str, date, date]]) -> pa.Table:
    return pa.table(
        {
            "campaign_id": [r[0] for r in rows],
            "campaign_type": [r[1] for r in rows],
            "start_date": pa.array([r[2] for r in rows], pa.date32()),
            "end_date": pa.array([r[3] for r in rows], pa.date32()),
        },
        schema=CAMPAIGNS_SCHEMA,
    )


def _np(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy(zero_copy_only=False)


# --- multiplier, counts and splits ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "tenths"),
    [
        (date(2024, 11, 29), 25),  # Black Friday
        (date(2024, 11, 18), 17),  # TG − 10
        (date(2024, 11, 28), 17),  # TG
        (date(2024, 11, 30), 10),
        (date(2024, 12, 11), 15),
        (date(2024, 12, 25), 15),
        (date(2024, 12, 26), 10),
        (date(2024, 7, 2), 15),
        (date(2024, 3, 4), 10),
    ],
)
def test_marketing_multiplier(day: date, tenths: int) -> None:
    host = SensorHost()
    assert marketing_boost_tenths(host._compute_marketing_multiplier(day)) == tenths


def test_counts_without_cap() -> None:
    codes = np.array([TYPES["seasonal_sale"], TYPES["loyalty_program"]])
    # B = 10: n = max(300, 1000) and max(200, 500); cap = max(1000, 2000) = 2000 > 1500.
    assert marketing_impression_counts(codes, 10, 2000).tolist() == [1000, 500]
    # B = 17: 1700 and 850, cap 3400.
    assert marketing_impression_counts(codes, 17, 2000).tolist() == [1700, 850]
    # The 100-per-channel floor.
    assert marketing_impression_counts(np.array([TYPES["loyalty_program"]]), 1, 0).tolist() == [200]


def test_counts_capped_by_largest_remainder() -> None:
    codes = np.array([TYPES["seasonal_sale"], TYPES["product_launch"], TYPES["flash_sale"]])
    # B = 25: n = 2500, 5000, 12500 (sum 20000); cap = max(1000, 700 × 20 // 10) = 1400.
    got = marketing_impression_counts(codes, 25, 700)
    n = np.array([2500, 5000, 12500])
    assert got.sum() == 1400
    assert (got >= n * 1400 // n.sum()).all() and (got <= n * 1400 // n.sum() + 1).all()
    assert got.tolist() == money.largest_remainder(1400, n).tolist() == [175, 350, 875]
    # A remainder tie goes to the lower campaign_id: three equal campaigns, cap 1000.
    eq = np.full(3, TYPES["flash_sale"])
    assert marketing_impression_counts(eq, 10, 0).tolist() == [334, 333, 333]


def test_channel_split_gives_remainder_to_earlier_channels() -> None:
    codes = np.array([TYPES["seasonal_sale"], TYPES["flash_sale"], TYPES["product_launch"]])
    split = split_impressions_by_channel(np.array([1000, 5001, 302]), codes)
    assert split.tolist() == [[334, 333, 333], [2501, 2500, 0], [101, 101, 100]]


def test_type_weights_by_month() -> None:
    assert campaign_type_weights(date(2024, 11, 3)).tolist() == [3, 1, 2, 4]
    assert campaign_type_weights(date(2024, 9, 3)).tolist() == [2, 3, 1, 2]
    assert campaign_type_weights(date(2024, 3, 3)).tolist() == [1, 1, 1, 1]


# --- campaign state ------------------------------------------------------------------------------


def test_start_campaign_follows_the_stream() -> None:
    for offset in range(40):
        day = date(2024, 11, 1) + timedelta(days=offset)
        carried = _campaigns([
            ("CMP2024010101", "loyalty_program", date(2024, 1, 1), day),  # ends today
            ("CMP2023120101", "seasonal_sale", date(2023, 12, 1), day + timedelta(days=3)),
        ])
        active = start_marketing_campaign(day, carried, stream(8, "marketing.campaign", day, 0))
        r = stream(8, "marketing.campaign", day, 0)
        starts = r.random(1)[0] < 0.90
        w = campaign_type_weights(day)
        t = min(int(np.searchsorted(np.cumsum(w) / w.sum(), r.random(1)[0], side="right")), 3)
        ids = _np(active, "campaign_id").tolist()
        assert ids == sorted(ids)
        new_id = "CMP" + day.strftime("%Y%m%d") + "01"
        assert (new_id in ids) == starts
        if starts:
            row = active.filter(pc.equal(active.column("campaign_id"), new_id)).to_pylist()[0]
            assert row["campaign_type"] == domain.CAMPAIGN_TYPES[t]
            assert row["start_date"] == day
            assert row["end_date"] == day + timedelta(days=int(CAMPAIGN_DAYS_ACTIVE[t]) - 1)
        state = campaigns_after_day(day, active)
        assert state.schema == CAMPAIGNS_SCHEMA
        ends = state.column("end_date").to_pylist()
        assert all(e >= day + timedelta(days=1) for e in ends)
        assert "CMP2024010101" not in state.column("campaign_id").to_pylist()
        assert "CMP2023120101" in state.column("campaign_id").to_pylist()


# --- impressions ---------------------------------------------------------------------------------


def _impressions(day: date, active: pa.Table, tenths: int = 10, per_day: int = 2000,
                 seed: int = 5, cost: MarketingCostConfig | None = None):
    customers = make_customers(30)
    cmin, cmax, dev = marketing_cost_arrays(cost or MarketingCostConfig())
    return marketing_impressions_table(
        day, active, tenths, per_day, customers.ad_id, cmin, cmax, dev,
        stream(seed, "marketing.impressions", day, 0),
    ), (cmin, cmax, dev)


ACTIVE = _campaigns([
    ("CMP2024030101", "product_launch", date(2024, 3, 1), date(2024, 3, 14)),
    ("CMP2024030301", "loyalty_program", date(2024, 3, 3), date(2024, 4, 1)),
    ("CMP2024030401", "flash_sale", date(2024, 3, 4), date(2024, 3, 4)),
])


def test_impressions_counts_and_channels() -> None:
    day = date(2024, 3, 4)
    table, _ = _impressions(day, ACTIVE, tenths=10, per_day=2000)
    assert table.schema == MARKETING_SCHEMA
    # n = 2000, 500, 5000 (sum 7500) > cap 2000 → 533.33.., 133.33.., 1333.33.. → 534, 133, 1333.
    counts = marketing_impression_counts(np.array([1, 2, 3]), 10, 2000)
    assert counts.tolist() == [534, 133, 1333]
    split = split_impressions_by_channel(counts, np.array([1, 2, 3]))
    camp, chan = _np(table, "CampaignId"), _np(table, "Channel")
    for c, (cid, ctype) in enumerate(zip(_np(ACTIVE, "campaign_id"), _np(ACTIVE, "campaign_type"),
                                         strict=True)):
        channels = CAMPAIGN_CHANNELS[TYPES[ctype]]
        assert set(chan[camp == cid]) <= set(channels)
        for j, ch in enumerate(channels):
            assert int(((camp == cid) & (chan == ch)).sum()) == split[c, j]
        assert (_np(table, "CampaignType")[camp == cid] == ctype).all()
    assert table.num_rows == 2000


def test_impression_ids_costs_and_customers() -> None:
    day = date(2024, 3, 4)
    table, (cmin, cmax, dev) = _impressions(day, ACTIVE)
    n = table.num_rows
    ids = _np(table, "ImpressionId")
    assert ids.tolist() == [f"IMP20240304{i:09d}" for i in range(1, n + 1)]
    ts = table.column("EventTS").cast(pa.int64()).to_numpy()
    assert ((ts >= day_start_us(day)) & (ts < day_start_us(day) + US_PER_DAY)).all()
    assert (np.diff(ts) >= 0).all()
    # Creative ids: CRV + campaign_id[3:] + channel position + variant.
    camp, chan, creative = _np(table, "CampaignId"), _np(table, "Channel"), _np(table, "CreativeId")
    for c, ch, cr in zip(camp, chan, creative, strict=True):
        pos = CAMPAIGN_CHANNELS[TYPES[dict(zip(_np(ACTIVE, "campaign_id"),
                                               _np(ACTIVE, "campaign_type"),
                                               strict=True))[c]]].index(ch) + 1
        m = re.fullmatch(r"CRV(\d{10})(\d)([123])", cr)
        assert m and m.group(1) == c[3:] and int(m.group(2)) == pos
    # Costs within the channel/device bounds, decimal = cents / 100.
    cents = _np(table, "CostCents")
    ch_code = np.array([domain.MARKETING_CHANNELS.index(c) for c in chan])
    dv_code = np.array([domain.DEVICES.index(d) for d in _np(table, "Device")])
    lo = np.maximum(1, np.floor(cmin[ch_code] * dev[dv_code] * 100 + 0.5))
    hi = np.maximum(1, np.floor(cmax[ch_code] * dev[dv_code] * 100 + 0.5))
    assert ((cents >= lo) & (cents <= hi)).all()
    assert money.decimal_to_cents(table.column("Cost")).tolist() == cents.tolist()
    # Devices roughly 60/30/10, customer ids on about 5% of rows, ad ids from master data.
    share = np.bincount(dv_code, minlength=3) / n
    assert abs(share[0] - 0.6) < 0.05 and abs(share[1] - 0.3) < 0.05
    cust = table.column("CustomerID")
    with_cust = cust.is_valid().to_numpy(zero_copy_only=False)
    assert 0.02 < with_cust.mean() < 0.08
    ad = _np(table, "CustomerAdId")
    cid = cust.to_numpy(zero_copy_only=False)[with_cust].astype(np.int64)
    assert ad[with_cust].tolist() == [f"AD{c:08d}" for c in cid]
    assert all(re.fullmatch(r"AD000000[0-3]\d", a) for a in ad)


def test_impression_seq_order_breaks_ties_by_campaign_and_channel() -> None:
    day = date(2024, 3, 4)
    table, _ = _impressions(day, ACTIVE)
    ts = table.column("EventTS").cast(pa.int64()).to_numpy()
    camp, chan = _np(table, "CampaignId"), _np(table, "Channel")
    for i in np.flatnonzero(np.diff(ts) == 0):
        assert (camp[i], chan[i]) <= (camp[i + 1], chan[i + 1])


def test_cost_uses_configured_bounds() -> None:
    cost = MarketingCostConfig(email_cost_min=2.0, email_cost_max=2.0, social_cost_min=0.001,
                               social_cost_max=0.002)
    active = _campaigns([("CMP2024030301", "loyalty_program", date(2024, 3, 3), date(2024, 4, 1))])
    table, (_, _, dev) = _impressions(date(2024, 3, 4), active, cost=cost)
    chan, cents = _np(table, "Channel"), _np(table, "CostCents")
    dv = np.array([domain.DEVICES.index(d) for d in _np(table, "Device")])
    email = chan == "EMAIL"
    assert (cents[email] == np.floor(2.0 * dev[dv[email]] * 100 + 0.5)).all()
    assert (cents[~email] == 1).all()  # the 1-cent floor


def test_no_active_campaigns_gives_empty_batch() -> None:
    table, _ = _impressions(date(2024, 3, 4), empty_campaigns_table())
    assert table.num_rows == 0 and table.schema == MARKETING_SCHEMA


# --- through the mixin ---------------------------------------------------------------------------


def _run_days(seed: int, first: date, days: int):
    host = SensorHost(seed=seed)
    state = None
    out = []
    for i in range(days):
        day = first + timedelta(days=i)
        ctx = make_day_context(day, host._master.stores)
        table, state = host._generate_marketing_activity(ctx, state)
        out.append((day, table, state))
    return out


def test_campaign_windows_over_several_days() -> None:
    runs = _run_days(3, date(2024, 11, 20), 14)
    per_day = SensorHost().config.volume.marketing_impressions_per_day
    for day, table, state in runs:
        assert state.schema == CAMPAIGNS_SCHEMA
        assert all(e >= day + timedelta(days=1) for e in state.column("end_date").to_pylist())
        for cid, ctype in set(zip(_np(table, "CampaignId"), _np(table, "CampaignType"),
                                  strict=True)):
            start = date(int(cid[3:7]), int(cid[7:9]), int(cid[9:11]))
            end = start + timedelta(days=int(CAMPAIGN_DAYS_ACTIVE[TYPES[ctype]]) - 1)
            assert start <= day <= end
        tenths = marketing_boost_tenths(SensorHost()._compute_marketing_multiplier(day))
        cap = max(1000, per_day * min(max(tenths, 5), 20) // 10)
        assert table.num_rows <= cap
        ts = table.column("EventTS").cast(pa.int64()).to_numpy()
        assert (ts // US_PER_DAY == day_start_us(day) // US_PER_DAY).all()
    assert sum(t.num_rows for _, t, _ in runs) > 0


def test_marketing_is_deterministic() -> None:
    a = _run_days(9, date(2024, 3, 1), 5)
    b = _run_days(9, date(2024, 3, 1), 5)
    c = _run_days(10, date(2024, 3, 1), 5)
    for (_, ta, sa), (_, tb, sb) in zip(a, b, strict=True):
        assert ta.equals(tb) and sa.equals(sb)
    assert not all(ta.equals(tc) for (_, ta, _), (_, tc, _) in zip(a, c, strict=True))


def test_state_keeps_the_input_schema() -> None:
    host = SensorHost()
    ctx = make_day_context(date(2024, 3, 5), host._master.stores)
    nullable = ACTIVE.cast(pa.schema([f.with_nullable(True) for f in CAMPAIGNS_SCHEMA]))
    _, state = host._generate_marketing_activity(ctx, nullable)
    assert state.schema == nullable.schema
    assert state.column("campaign_id").to_pylist() == sorted(state.column("campaign_id").to_pylist())
    ids = state.column("campaign_id").to_pylist()
    assert "CMP2024030401" not in ids  # the flash sale ended on Mar 4
    assert {"CMP2024030101", "CMP2024030301"} <= set(ids)
