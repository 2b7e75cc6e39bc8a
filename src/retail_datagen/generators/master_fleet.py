"""The truck fleet of the master data: ``dim_trucks`` (master-data.md §5).

The fleet is split into DC_FLEET, POOL and SUPPLIER trucks from the volume section; every
DC→store truck is homed at a distribution centre by store count (sharding.md §2.1), so a DC's
legs only ever use its own trucks, and plates come from their own named stream. Like the rest of the master builders, every function is pure in its inputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from retail_datagen import domain
from retail_datagen.config.models import VolumeConfig
from retail_datagen.errors import ConfigError
from retail_datagen.generators.master_columns import join, padded, vocab
from retail_datagen.money import largest_remainder
from retail_datagen.rng import stream

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fleet:
    """Trucks in truck_id order (arrays of shape (T,))."""

    refrigeration: np.ndarray  # bool
    type_code: np.ndarray  # int64 into domain.TRUCK_TYPES
    dc_id: np.ndarray  # int64, 0 where NULL


def _proportional(k_c: int, counts: np.ndarray) -> np.ndarray:
    """DC_FLEET trucks of one class per DC in the proportional deal (sharding.md §2.1).

    Every DC with stores first gets one truck when the class has enough for all of them; the
    rest follow store counts by largest remainder.
    """
    served = (counts > 0).astype(np.int64)
    d_s = int(served.sum())
    if d_s and k_c >= d_s:
        return served + largest_remainder(k_c - d_s, counts)
    return largest_remainder(k_c, counts)


def deal_fleet(volume: VolumeConfig, dc_store_counts: np.ndarray) -> Fleet:
    """Split the trucks into DC_FLEET, POOL and SUPPLIER and home every DC→store truck at a DC.

    Args:
        volume: The volume section (fleet sizes, ``trucks_per_dc``, assignment rate).
        dc_store_counts: int64 array of shape (dcs,), stores served by each DC in dc_id order.

    Returns:
        The fleet with ids 1..T: refrigerated (DC_FLEET, then POOL), ambient (DC_FLEET, then
        POOL), supplier refrigerated, supplier ambient. POOL trucks are homed by store count
        with no minimum, in dc_id order.
    """
    r, a = volume.refrigerated_trucks, volume.non_refrigerated_trucks
    sr, sa = volume.supplier_refrigerated_trucks, volume.supplier_non_refrigerated_trucks
    k, k_ref = volume.assigned_fleet()
    k_amb = k - k_ref
    dcs = len(dc_store_counts)
    dc_ids = np.arange(1, dcs + 1, dtype=np.int64)
    counts = np.asarray(dc_store_counts, dtype=np.int64)
    if volume.trucks_per_dc is not None:
        # Round-robin: refrigerated first, the ambient trucks continue the rotation.
        deal = dc_ids[np.arange(k) % dcs]
        ref_dc, amb_dc = deal[:k_ref], deal[k_ref:]
    else:
        ref_dc = np.repeat(dc_ids, _proportional(k_ref, counts))
        amb_dc = np.repeat(dc_ids, _proportional(k_amb, counts))
    ref_pool = np.repeat(dc_ids, largest_remainder(r - k_ref, counts))
    amb_pool = np.repeat(dc_ids, largest_remainder(a - k_amb, counts))
    fleet_type, pool_type, supplier_type = (
        domain.TRUCK_TYPES.index(t) for t in ("DC_FLEET", "POOL", "SUPPLIER")
    )
    type_code = np.concatenate([
        np.where(np.arange(r) < k_ref, fleet_type, pool_type),
        np.where(np.arange(a) < k_amb, fleet_type, pool_type),
        np.full(sr + sa, supplier_type),
    ]).astype(np.int64)  # fmt: skip
    dc_id = np.concatenate([ref_dc, ref_pool, amb_dc, amb_pool,
                            np.zeros(sr + sa, dtype=np.int64)]).astype(np.int64)
    refrigeration = np.concatenate([
        np.ones(r, bool), np.zeros(a, bool), np.ones(sr, bool), np.zeros(sa, bool),
    ])  # fmt: skip
    return Fleet(refrigeration=refrigeration, type_code=type_code, dc_id=dc_id)


def unserved_dcs(volume: VolumeConfig, dc_store_counts: np.ndarray) -> np.ndarray:
    """dc_ids of the DCs with stores that end with no refrigerated truck (sharding.md §2.1)."""
    fleet = deal_fleet(volume, dc_store_counts)
    home = fleet.dc_id[fleet.refrigeration & (fleet.dc_id > 0)]
    has_ref = np.bincount(home, minlength=len(dc_store_counts) + 1)[1:] > 0
    return np.flatnonzero((np.asarray(dc_store_counts) > 0) & ~has_ref) + 1


def check_fleet(volume: VolumeConfig, dc_store_counts: np.ndarray) -> None:
    """Reject a fleet that leaves a DC with stores without a refrigerated truck; warn when a
    DC has few trucks for its stores.

    Raises:
        ConfigError: naming the unserved DCs and the smallest ``refrigerated_trucks`` (other
            fields unchanged) that serves every DC.
    """
    unserved = unserved_dcs(volume, dc_store_counts)
    if unserved.size:
        needed = volume.refrigerated_trucks + 1
        # Each added refrigerated truck raises K_ref or the refrigerated pool, so the
        # search ends once every DC with stores gets one.
        while unserved_dcs(volume.model_copy(update={"refrigerated_trucks": needed}),
                           dc_store_counts).size:
            needed += 1
        shown = ", ".join(str(d) for d in unserved[:20].tolist())
        more = f" and {unserved.size - 20} more" if unserved.size > 20 else ""
        raise ConfigError(
            f"volume.refrigerated_trucks: DC {shown}{more} would get no refrigerated truck "
            f"(DC_FLEET or POOL); set refrigerated_trucks to at least {needed}")
    fleet = deal_fleet(volume, dc_store_counts)
    homed = np.bincount(fleet.dc_id, minlength=len(dc_store_counts) + 1)[1:]
    counts = np.asarray(dc_store_counts, dtype=np.int64)
    short = np.flatnonzero(homed < 0.4 * counts) + 1
    if short.size:
        logger.warning(
            "W-04: DC %s have fewer than 0.4 trucks per store; legs will queue for days "
            "(add refrigerated_trucks or non_refrigerated_trucks)",
            ", ".join(str(d) for d in short[:20].tolist()))


def draw_plates(seed: int, count: int) -> pa.Array:
    """Unique plates ``AAA0000`` in truck_id order, duplicates redrawn (§5)."""
    rng = stream(seed, "master.trucks.plate")
    letters = rng.integers(0, 26, (count, 3))
    digits = rng.integers(0, 10_000, count)
    while True:
        key = ((letters[:, 0] * 26 + letters[:, 1]) * 26 + letters[:, 2]) * 10_000 + digits
        dup = np.ones(count, dtype=bool)
        dup[np.unique(key, return_index=True)[1]] = False
        m = int(dup.sum())
        if m == 0:
            break
        letters[dup] = rng.integers(0, 26, (m, 3))
        digits[dup] = rng.integers(0, 10_000, m)
    alphabet = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
    prefix = alphabet[letters].copy().view("S3").ravel()
    return join(pa.array(prefix.astype(str), pa.string()), padded(digits, 4))


def trucks_table(seed: int, volume: VolumeConfig, dc_store_counts: np.ndarray) -> pa.Table:
    """``dim_trucks`` in contract column order."""
    fleet = deal_fleet(volume, dc_store_counts)
    t = len(fleet.dc_id)
    return pa.table({
        "truck_id": np.arange(1, t + 1, dtype=np.int64),
        "license_plate": draw_plates(seed, t),
        "refrigeration": fleet.refrigeration,
        "truck_type": vocab(domain.TRUCK_TYPES, fleet.type_code),
        "dc_id": pa.array(fleet.dc_id, pa.int64(), mask=fleet.dc_id == 0),
        "capacity_units": np.full(t, volume.truck_capacity, dtype=np.int32),
    })  # fmt: skip


__all__ = ["Fleet", "check_fleet", "deal_fleet", "draw_plates", "trucks_table", "unserved_dcs"]
