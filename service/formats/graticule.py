"""The lon/lat graticule of a georeferenced grid: which lines, and where they cross the grid.

Shared by the PNG strip and GIF (`service.formats.png`, drawn cell by cell) and the dashboard
(`GET /v1/sites/{site}/graticule`, drawn as polylines over its maps). Pure functions of
`core.georef.GridGeoref`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import contourpy
import numpy as np
from numpy.typing import NDArray

from core.georef import GridGeoref

STEPS_DEG = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
MAX_LINES_ACROSS = 4


@dataclass(frozen=True)
class GraticuleLine:
    """One meridian (``axis`` "lon") or parallel ("lat") at ``value_deg``, as pieces of
    polyline in grid coordinates: (column, row) pairs, fractional, cell centres at integers
    (0, 0) = the first row's first cell (north-west), as the frames are laid out."""

    axis: Literal["lon", "lat"]
    value_deg: float
    pieces: list[list[tuple[float, float]]]


def graticule_step_deg(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> float:
    """The smallest of `STEPS_DEG` that draws at most `MAX_LINES_ACROSS` lines across the
    grid's larger extent in degrees."""
    extent = max(float(np.ptp(lon)), float(np.ptp(lat)))
    return next((s for s in STEPS_DEG if extent / s <= MAX_LINES_ACROSS), STEPS_DEG[-1])


def graticule_lines(georef: GridGeoref) -> tuple[float, list[GraticuleLine]]:
    """(step in degrees, the lines crossing the grid), each traced by contouring the cell
    centres' longitude (latitude) at the line's value (contourpy, linear within cells)."""
    lon, lat = georef.lonlat()
    step = graticule_step_deg(lon, lat)
    lines = []
    axes: tuple[tuple[Literal["lon", "lat"], NDArray[np.float64]], ...] = (
        ("lon", lon),
        ("lat", lat),
    )
    for axis, field in axes:
        generator = contourpy.contour_generator(z=field, name="serial")
        first = math.ceil(float(field.min()) / step)
        last = math.floor(float(field.max()) / step)
        for k in range(first, last + 1):
            value = round(k * step, 6)
            traced: list[NDArray[np.float64]] = generator.lines(value)  # type: ignore[assignment]
            pieces = [
                [(round(float(x), 3), round(float(y), 3)) for x, y in piece]
                for piece in traced
                if len(piece) >= 2
            ]
            if pieces:
                lines.append(GraticuleLine(axis, value, pieces))
    return step, lines
