"""Keyed random streams.

Every random draw in retail_datagen comes from :func:`stream`, a numpy PCG64 generator keyed by
``(seed, stream name, day, shard)``. Names are hashed with blake2b, never with ``hash()``, so the
keys are the same in every process whatever ``PYTHONHASHSEED`` is.
"""

from __future__ import annotations

from datetime import date
from hashlib import blake2b

import numpy as np


def stable_hash64(text: str) -> int:
    """A process-independent 64-bit hash of ``text`` (blake2b, 8-byte digest, big endian)."""
    return int.from_bytes(blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def stream(seed: int, name: str, day: date | None = None, shard: int = 0) -> np.random.Generator:
    """The random generator for one step: ``name`` on ``day`` for ``shard`` (store, DC or region)."""
    key = [int(seed), stable_hash64(name), day.toordinal() if day is not None else 0, int(shard)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))


def categorical(rng: np.random.Generator, p: np.ndarray | list[float], n: int) -> np.ndarray:
    """``n`` category indices drawn with probabilities ``p`` (one uniform per item)."""
    cdf = np.cumsum(np.asarray(p, dtype=np.float64))
    cdf = cdf / cdf[-1]
    idx = np.searchsorted(cdf, rng.random(n), side="right")
    return np.minimum(idx, len(cdf) - 1)


def categorical_rows(rng_u: np.ndarray, p_rows: np.ndarray) -> np.ndarray:
    """Per-item categorical: ``p_rows[i]`` is item i's probability row, ``rng_u[i]`` its uniform."""
    cdf = np.cumsum(p_rows, axis=1)
    cdf = cdf / cdf[:, -1:]
    idx = (cdf <= rng_u[:, None]).sum(axis=1)
    return np.minimum(idx, p_rows.shape[1] - 1)


def uniform_int(rng: np.random.Generator, low, high, n: int) -> np.ndarray:
    """U{low..high} inclusive (``low`` and ``high`` may be arrays)."""
    return rng.integers(low, np.asarray(high) + 1, n)


__all__ = ["categorical", "categorical_rows", "stable_hash64", "stream", "uniform_int"]
