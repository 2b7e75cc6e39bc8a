"""Distances on the Earth's surface, shared by master data, fact generation and validation."""

from __future__ import annotations

import numpy as np

#: Mean Earth radius in miles used by every distance in the project (the SQL checks too).
EARTH_RADIUS_MI = 3958.8


def haversine_miles(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in miles (Earth radius 3,958.8 mi); broadcasts.

    Args:
        lat1, lon1, lat2, lon2: Degrees, float64 arrays (or scalars) of broadcastable shapes.

    Returns:
        float64 array of the broadcast shape.
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_MI * np.arcsin(np.sqrt(a))


__all__ = ["EARTH_RADIUS_MI", "haversine_miles"]
