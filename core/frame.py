"""The types that travel the whole way: a raw radar field and a normalised frame."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from core.georef import GridGeoref

MAX_GRID_CELLS = 4096 * 4096
"""The largest radar grid read, in cells; checked from the file's metadata before any data is
read, so a small compressed file cannot expand into gigabytes (a decompression bomb)."""


class RejectReason(StrEnum):
    """Why a frame went to quarantine; the value is the short code used in counters."""

    UNREADABLE = "unreadable"
    NO_PRECIPITATION_VARIABLE = "no_precipitation_variable"
    WRONG_UNITS = "wrong_units"
    NO_VALID_TIME = "no_valid_time"
    NO_SITE = "no_site"
    BAD_SHAPE = "bad_shape"
    TOO_LARGE = "too_large"
    BAD_VALUES = "bad_values"
    ALL_NAN = "all_nan"
    WRONG_GRID = "wrong_grid"
    FUTURE_TIME = "future_time"
    PAST_TIME = "past_time"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    INTERNAL_ERROR = "internal_error"


class FrameRejected(Exception):
    """A frame that cannot enter the window; carries a reason code and a readable message."""

    def __init__(self, reason: RejectReason, message: str, site_id: str | None = None) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message
        self.site_id = site_id  # set once the frame's site is known (after reading)


@dataclass(frozen=True)
class RadarField:
    """One radar frame as read from its file, brought to reflectivity.

    dbz: (H, W) float32 reflectivity in dBZ on the file's grid; NaN outside coverage,
    -inf where the source says "no rain" (rain rate 0).
    """

    site_id: str
    valid_time: datetime  # UTC, tz-aware
    dbz: NDArray[np.float32]
    quantity: str  # standard_name of the source variable
    source_units: str
    accumulation_min: float | None = None  # only for precipitation_amount
    georef: GridGeoref | None = None  # where the (H, W) grid lies; None: grid indices only
    cells_beyond_bounds: int = 0  # cells beyond the physical bounds, read as nodata (NaN)


@dataclass(frozen=True)
class Frame:
    """One normalised frame: grey (target, target) float32 in [0, 1] at a site and time."""

    site_id: str
    valid_time: datetime  # UTC, tz-aware
    grey: NDArray[np.float32]
    norm_version: str
    mask_version: str | None = None
