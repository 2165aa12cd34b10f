"""Registry of the precipitation quantities a radar file may carry, keyed by CF standard_name.

Each entry knows the units it accepts and how to bring its values to reflectivity (dBZ)
through the configured Z-R relation. ``get_quantity(name)`` lists the valid names when given
a wrong one, like pysteps' ``get_method``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from core.conversion import (
    Float32Array,
    accumulation_mm_to_rain_rate_mmh,
    rain_rate_mmh_to_dbz,
)

ToDbz = Callable[[NDArray[np.floating], float | None, float, float], Float32Array]


@dataclass(frozen=True)
class Quantity:
    """A CF precipitation quantity: accepted unit spellings and the conversion to dBZ.

    ``to_dbz(values, accumulation_min, zr_a, zr_b)``; values (H, W) in the quantity's units.
    """

    standard_name: str
    units: frozenset[str]
    to_dbz: ToDbz
    is_rain: bool  # True: physical rain amount/rate, negative values are invalid
    needs_interval: bool = False


def _accumulation_to_dbz(
    values: NDArray[np.floating], accumulation_min: float | None, a: float, b: float
) -> Float32Array:
    if accumulation_min is None:
        raise ValueError("an accumulation needs its interval")
    return rain_rate_mmh_to_dbz(accumulation_mm_to_rain_rate_mmh(values, accumulation_min), a, b)


def _rate_to_dbz(
    values: NDArray[np.floating], accumulation_min: float | None, a: float, b: float
) -> Float32Array:
    return rain_rate_mmh_to_dbz(values, a, b)


def _dbz_to_dbz(
    values: NDArray[np.floating], accumulation_min: float | None, a: float, b: float
) -> Float32Array:
    return np.asarray(values, dtype=np.float32).copy()


_QUANTITIES: dict[str, Quantity] = {
    q.standard_name: q
    for q in (
        Quantity(
            "precipitation_amount",
            frozenset({"kg m-2", "kg m**-2", "kg/m2", "kg/m^2", "mm"}),
            _accumulation_to_dbz,
            is_rain=True,
            needs_interval=True,
        ),
        Quantity(
            "rainfall_rate",
            frozenset({"mm h-1", "mm/h", "mm hr-1", "mm h**-1", "mm/hr"}),
            _rate_to_dbz,
            is_rain=True,
        ),
        Quantity(
            "equivalent_reflectivity_factor",
            frozenset({"dBZ", "dBz", "dbz", "dBZe"}),
            _dbz_to_dbz,
            is_rain=False,
        ),
    )
}


def quantity_names() -> list[str]:
    """The standard_names a reader accepts, in order of preference."""
    return list(_QUANTITIES)


def get_quantity(standard_name: str) -> Quantity:
    """The registered quantity for a CF standard_name; a wrong name lists the valid ones."""
    try:
        return _QUANTITIES[standard_name]
    except KeyError:
        raise ValueError(
            f"unknown precipitation quantity {standard_name!r}; valid: {quantity_names()}"
        ) from None
