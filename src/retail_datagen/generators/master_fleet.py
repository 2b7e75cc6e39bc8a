"""The truck fleet of the master data: ``dim_trucks`` (master-data.md §5).

The fleet is split into DC_FLEET, POOL and SUPPLIER trucks from the volume section alone;
DC-fleet trucks are dealt to the distribution centres, and plates come from their own named
stream. Like the rest of the master builders, every function is pure in its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from retail_datagen import domain
from retail_datagen.config.models import VolumeConfig
from retail_datagen.generators.master_columns import join, padded, vocab
from retail_datagen.money import largest_remainder
from retail_datagen.rng import stream


@dataclass(frozen=True)
class Fleet:
    """Trucks in truck_id order (arrays of shape (T,))."""

    refrigeration: np.ndarray  # bool
    type_code: np.ndarray  # int64 into domain.TRUCK_TYPES
    dc_id: np.ndarray  # int64, 0 where NULL


def deal_fleet(volume: VolumeConfig, dc_store_counts: np.ndarray) -> Fleet:
    """Split the trucks into DC_FLEET, POOL and SUPPLIER and deal DC_FLEET trucks to DCs.

    Args:
        volume: The volume section (fleet sizes, ``trucks_per_dc``, assignment rate).
        dc_store_counts: int64 array of shape (dcs,), stores served by each DC in dc_id order.

    Returns:
        The fleet with ids 1..T: DC-fleet refrigerated, DC-fleet ambient, supplier
        refrigerated, supplier ambient.
    """
    r, a = volume.refrigerated_trucks, volume.non_refrigerated_trucks
    sr, sa = volume.supplier_refrigerated_trucks, volume.supplier_non_refrigerated_trucks
    k, k_ref = volume.assigned_fleet()
    k_amb = k - k_ref
    dcs = len(dc_store_counts)
    dc_ids = np.arange(1, dcs + 1, dtype=np.int64)
    if volume.trucks_per_dc is not None:
        # Round-robin: refrigerated first, the ambient trucks continue the rotation.
        deal = dc_ids[np.arange(k) % dcs]
        ref_dc, amb_dc = deal[:k_ref], deal[k_ref:]
    else:
        counts = np.asarray(dc_store_counts, dtype=np.int64)
        ref_dc = np.repeat(dc_ids, largest_remainder(k_ref, counts))
        amb_dc = np.repeat(dc_ids, largest_remainder(k_amb, counts))
    fleet_type, pool_type, supplier_type = (
        domain.TRUCK_TYPES.index(t) for t in ("DC_FLEET", "POOL", "SUPPLIER")
    )
    type_code = np.concatenate([
        np.where(np.arange(r) < k_ref, fleet_type, pool_type),
        np.where(np.arange(a) < k_amb, fleet_type, pool_type),
        np.full(sr + sa, supplier_type),
    ]).astype(np.int64)  # fmt: skip
    dc_id = np.zeros(r + a + sr + sa, dtype=np.int64)
    dc_id[:k_ref] = ref_dc
    dc_id[r : r + k_amb] = amb_dc
    refrigeration = np.concatenate([
        np.ones(r, bool), np.zeros(a, bool), np.ones(sr, bool), np.zeros(sa, bool),
    ])  # fmt: skip
    return Fleet(refrigeration=refrigeration, type_code=type_code, dc_id=dc_id)


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


__all__ = ["Fleet", "deal_fleet", "draw_plates", "trucks_table"]
