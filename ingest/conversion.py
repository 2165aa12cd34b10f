"""Unit conversions between rain rate (mm/h), reflectivity (dBZ) and grey levels.

Pure functions on arrays: inputs are copied, never modified; NaN (no observation) stays NaN.
Z-R relation Z = a R^b (Z in mm^6 m^-3, R in mm/h); Marshall-Palmer a=200, b=1.6 by default.
Grey level is min-max scaling of dBZ with FIXED bounds, clipped to [0, 1] (METHOD.md, step 1).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

Float32Array = NDArray[np.float32]

MARSHALL_PALMER_A = 200.0
MARSHALL_PALMER_B = 1.6


def rain_rate_mmh_to_dbz(
    rain_rate_mmh: ArrayLike, a: float = MARSHALL_PALMER_A, b: float = MARSHALL_PALMER_B
) -> Float32Array:
    """dBZ = 10 log10(a R^b). R = 0 gives -inf dBZ (no echo); NaN stays NaN. Any shape."""
    rain = np.asarray(rain_rate_mmh, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        dbz = 10.0 * np.log10(a) + 10.0 * b * np.log10(rain)
    return dbz.astype(np.float32)


def dbz_to_rain_rate_mmh(
    dbz: ArrayLike, a: float = MARSHALL_PALMER_A, b: float = MARSHALL_PALMER_B
) -> Float32Array:
    """R = (10^(dBZ/10) / a)^(1/b) in mm/h; -inf dBZ gives 0; NaN stays NaN. Any shape."""
    dbz64 = np.asarray(dbz, dtype=np.float64)
    return np.power(10.0 ** (dbz64 / 10.0) / a, 1.0 / b).astype(np.float32)


def accumulation_mm_to_rain_rate_mmh(
    accumulation_mm: ArrayLike, interval_min: float
) -> Float32Array:
    """Mean rain rate (mm/h) over an accumulation interval: depth (mm = kg m-2) * 60 / minutes."""
    if not interval_min > 0:
        raise ValueError(f"accumulation interval must be positive, got {interval_min} min")
    return (np.asarray(accumulation_mm, dtype=np.float64) * (60.0 / interval_min)).astype(
        np.float32
    )


def dbz_to_grey(dbz: ArrayLike, dbz_min: float, dbz_max: float) -> Float32Array:
    """Grey = (dBZ - dbz_min) / (dbz_max - dbz_min), clipped to [0, 1]; NaN stays NaN."""
    scaled = (np.asarray(dbz, dtype=np.float64) - dbz_min) / (dbz_max - dbz_min)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def grey_to_dbz(grey: ArrayLike, dbz_min: float, dbz_max: float) -> Float32Array:
    """Inverse of `dbz_to_grey` on (0, 1]; grey <= 0 means "below dbz_min" and gives -inf."""
    g = np.asarray(grey, dtype=np.float64)
    dbz = dbz_min + g * (dbz_max - dbz_min)
    return np.where(g > 0.0, dbz, -np.inf).astype(np.float32)


def grey_to_rain_rate_mmh(
    grey: ArrayLike,
    dbz_min: float,
    dbz_max: float,
    a: float = MARSHALL_PALMER_A,
    b: float = MARSHALL_PALMER_B,
) -> Float32Array:
    """Rain rate (mm/h) of grey levels; grey 0 (at or below dbz_min) is exactly 0 mm/h."""
    return dbz_to_rain_rate_mmh(grey_to_dbz(grey, dbz_min, dbz_max), a, b)
