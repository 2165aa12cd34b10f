"""Unit conversions between rain rate (mm/h), reflectivity (dBZ) and grey levels.

Pure functions on arrays: inputs are copied, never modified; NaN (no observation) stays NaN.
Arithmetic is float32 (7 significant digits, far finer than radar precision, and 20x faster
than float64 for the logarithms on a 512 x 512 grid).
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
    rain = np.asarray(rain_rate_mmh, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        dbz = np.log10(rain)
    dbz *= np.float32(10.0 * b)
    dbz += np.float32(10.0 * np.log10(a))
    return dbz


def dbz_to_rain_rate_mmh(
    dbz: ArrayLike, a: float = MARSHALL_PALMER_A, b: float = MARSHALL_PALMER_B
) -> Float32Array:
    """R = (10^(dBZ/10) / a)^(1/b) in mm/h; -inf dBZ gives 0; NaN stays NaN. Any shape."""
    dbz32 = np.asarray(dbz, dtype=np.float32)
    # R = 10^((dBZ - 10 log10 a) / (10 b)), one power instead of two
    exponent = (dbz32 - np.float32(10.0 * np.log10(a))) / np.float32(10.0 * b)
    return np.power(np.float32(10.0), exponent).astype(np.float32)


def accumulation_mm_to_rain_rate_mmh(
    accumulation_mm: ArrayLike, interval_min: float
) -> Float32Array:
    """Mean rain rate (mm/h) over an accumulation interval: depth (mm = kg m-2) * 60 / minutes."""
    if not interval_min > 0:
        raise ValueError(f"accumulation interval must be positive, got {interval_min} min")
    return np.asarray(accumulation_mm, dtype=np.float32) * np.float32(60.0 / interval_min)


def dbz_to_grey(dbz: ArrayLike, dbz_min: float, dbz_max: float) -> Float32Array:
    """Grey = (dBZ - dbz_min) / (dbz_max - dbz_min), clipped to [0, 1]; NaN stays NaN."""
    scaled = (np.asarray(dbz, dtype=np.float32) - np.float32(dbz_min)) / np.float32(
        dbz_max - dbz_min
    )
    return np.clip(scaled, np.float32(0.0), np.float32(1.0))


def grey_to_dbz(grey: ArrayLike, dbz_min: float, dbz_max: float) -> Float32Array:
    """Inverse of `dbz_to_grey` on (0, 1]; grey <= 0 means "below dbz_min" and gives -inf.

    NaN (no observation) stays NaN.
    """
    g = np.asarray(grey, dtype=np.float64)
    dbz = dbz_min + g * (dbz_max - dbz_min)
    below = np.where(np.isnan(g), np.nan, -np.inf)
    return np.where(g > 0.0, dbz, below).astype(np.float32)


def grey_to_rain_rate_mmh(
    grey: ArrayLike,
    dbz_min: float,
    dbz_max: float,
    a: float = MARSHALL_PALMER_A,
    b: float = MARSHALL_PALMER_B,
) -> Float32Array:
    """Rain rate (mm/h) of grey levels; grey 0 (at or below dbz_min) is exactly 0 mm/h."""
    return dbz_to_rain_rate_mmh(grey_to_dbz(grey, dbz_min, dbz_max), a, b)
