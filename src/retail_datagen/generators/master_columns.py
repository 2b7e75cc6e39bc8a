"""Column helpers of the master-data builders: uniform draws, picks, decimals and strings.

They are shared by :mod:`~retail_datagen.generators.master_geo`,
:mod:`~retail_datagen.generators.master_fleet` and
:mod:`~retail_datagen.generators.master_people`, and hold no state of their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def uniform(
    rng: np.random.Generator, low: float | np.ndarray, high: float | np.ndarray, n: int
) -> np.ndarray:
    """U(low, high) as ``low + (high − low) × rng.random(n)`` (behaviour.md §1 rule 5)."""
    return low + (high - low) * rng.random(n)


def pick(u: np.ndarray, p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Categorical index of each uniform ``u`` over probabilities ``p`` (columns as printed)."""
    w = np.asarray(p, dtype=np.float64)
    cdf = np.cumsum(w) / np.sum(w)
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(w) - 1)


def decimal_array(unscaled: np.ndarray, precision: int, scale: int) -> pa.Array:
    """A ``decimal128(precision, scale)`` array whose unscaled integers are ``unscaled``.

    Built from the int64 buffer (low word, then the sign extension), so no value passes
    through float.
    """
    v = np.ascontiguousarray(np.asarray(unscaled, dtype=np.int64).reshape(-1))
    words = np.empty((v.size, 2), dtype="<i8")
    words[:, 0] = v
    words[:, 1] = v >> 63
    return pa.Array.from_buffers(
        pa.decimal128(precision, scale), v.size, [None, pa.py_buffer(words)]
    )


def text(values: np.ndarray | Sequence[object]) -> pa.Array:
    """Integers (or strings) as an Arrow string array."""
    return pa.array(values).cast(pa.string())


def padded(values: np.ndarray, width: int) -> pa.Array:
    """Non-negative integers as decimal strings left-padded with zeros to ``width``."""
    return pc.utf8_lpad(text(values), width, "0")


def join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate string arrays and scalars element-wise."""
    return pc.binary_join_element_wise(*parts, "")


def vocab(values: tuple[str, ...] | list[str] | np.ndarray, codes: np.ndarray) -> pa.Array:
    """The strings ``values[codes]`` as an Arrow array."""
    return pa.array(values, type=pa.string()).take(pa.array(np.asarray(codes, dtype=np.int64)))


__all__ = ["decimal_array", "join", "padded", "pick", "text", "uniform", "vocab"]
