"""Where a regular radar grid lies on Earth: its CRS and cell-centre coordinates.

A `GridGeoref` follows a frame from its file to every forecast made from it. The reader takes
it from the file's own georeference (CF ``grid_mapping`` with pyproj's ``CRS.from_cf``, or
ODIM ``where/projdef``); the normalisation's crop and resize are deterministic, so
`GridGeoref.cropped` and `GridGeoref.resized` give the geometry of the 100 x 100 grid the
network sees. Coordinates are projection metres; cell (row i, column j) has its centre at
``x = x0_m + j dx_m``, ``y = y0_m + i dy_m`` (``dy_m`` < 0 where rows run north to south).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from pyproj import CRS, Transformer

RELATIVE_SPACING_TOLERANCE = 1e-3
"""A coordinate axis is regular when every step is within this share of the mean step."""


@dataclass(frozen=True)
class GridGeoref:
    """A regular grid of ``ny`` x ``nx`` cells in the CRS ``crs_wkt`` (coordinates in m)."""

    crs_wkt: str
    x0_m: float
    dx_m: float
    y0_m: float
    dy_m: float
    nx: int
    ny: int

    # -- on the grid ------------------------------------------------------------------------
    def x_m(self) -> NDArray[np.float64]:
        """(nx,) cell-centre x in metres."""
        return self.x0_m + self.dx_m * np.arange(self.nx, dtype=np.float64)

    def y_m(self) -> NDArray[np.float64]:
        """(ny,) cell-centre y in metres."""
        return self.y0_m + self.dy_m * np.arange(self.ny, dtype=np.float64)

    def cropped(self, top: int, left: int, rows: int, cols: int) -> GridGeoref:
        """The ``rows`` x ``cols`` window starting at row ``top``, column ``left``."""
        return replace(
            self,
            x0_m=self.x0_m + left * self.dx_m,
            y0_m=self.y0_m + top * self.dy_m,
            nx=cols,
            ny=rows,
        )

    def resized(self, rows: int, cols: int) -> GridGeoref:
        """The same area in ``rows`` x ``cols`` cells, edges aligned (as the bilinear resize of
        `ingest.normalize.resize`, ``grid_mode``): cell j's centre sits at source index
        ``(j + 0.5) nx / cols - 0.5``."""
        fx, fy = self.nx / cols, self.ny / rows
        return GridGeoref(
            self.crs_wkt,
            x0_m=self.x0_m + self.dx_m * (0.5 * fx - 0.5),
            dx_m=self.dx_m * fx,
            y0_m=self.y0_m + self.dy_m * (0.5 * fy - 0.5),
            dy_m=self.dy_m * fy,
            nx=cols,
            ny=rows,
        )

    def transform(self) -> tuple[float, float, float, float, float, float]:
        """The affine (a, b, c, d, e, f) of GDAL/rasterio: x = a col + b row + c at the cells'
        outer corner (col, row = 0 at the first cell's edge)."""
        return (
            self.dx_m,
            0.0,
            self.x0_m - self.dx_m / 2,
            0.0,
            self.dy_m,
            self.y0_m - self.dy_m / 2,
        )

    # -- on Earth ---------------------------------------------------------------------------
    def lonlat(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(lon, lat), each (ny, nx) degrees east and north, of the cell centres."""
        x, y = np.meshgrid(self.x_m(), self.y_m())
        lon, lat = to_lonlat(self.crs_wkt).transform(x, y)
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

    def bounds_lonlat(self) -> tuple[float, float, float, float]:
        """(lon_min, lat_min, lon_max, lat_max) of the grid's outer edges, degrees."""
        edge = np.linspace(0.0, 1.0, 64)
        x_lo, x_hi = self.x0_m - self.dx_m / 2, self.x0_m + self.dx_m * (self.nx - 0.5)
        y_lo, y_hi = self.y0_m - self.dy_m / 2, self.y0_m + self.dy_m * (self.ny - 0.5)
        xs = np.concatenate([x_lo + (x_hi - x_lo) * edge, np.full(64, x_hi)])
        ys = np.concatenate([np.full(64, y_lo), y_lo + (y_hi - y_lo) * edge])
        xs = np.concatenate([xs, x_hi - (x_hi - x_lo) * edge, np.full(64, x_lo)])
        ys = np.concatenate([ys, np.full(64, y_hi), y_hi - (y_hi - y_lo) * edge])
        lon, lat = to_lonlat(self.crs_wkt).transform(xs, ys)
        return float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat))

    def cell_of(self, lon: float, lat: float) -> tuple[int, int] | None:
        """(row, column) of the cell holding ``lon``/``lat`` (degrees), None outside the grid."""
        x, y = _from_lonlat(self.crs_wkt).transform(lon, lat)
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        col = math.floor((x - self.x0_m) / self.dx_m + 0.5)
        row = math.floor((y - self.y0_m) / self.dy_m + 0.5)
        if 0 <= row < self.ny and 0 <= col < self.nx:
            return row, col
        return None

    def cell_area_km2(self) -> float:
        """The area of one cell in the projection's plane (km2; equal-area CRSs: on Earth)."""
        return abs(self.dx_m * self.dy_m) / 1e6

    # -- as text ----------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> GridGeoref:
        """The geometry `to_json` wrote; ValueError on anything else."""
        try:
            values = json.loads(text)
            return cls(
                crs_wkt=str(values["crs_wkt"]),
                x0_m=float(values["x0_m"]),
                dx_m=float(values["dx_m"]),
                y0_m=float(values["y0_m"]),
                dy_m=float(values["dy_m"]),
                nx=int(values["nx"]),
                ny=int(values["ny"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a grid geometry: {exc}") from exc

    def same_grid(self, other: GridGeoref, tolerance_m: float = 1.0) -> bool:
        """Whether ``other`` places the same cells (within ``tolerance_m``) in the same CRS."""
        if (self.nx, self.ny) != (other.nx, other.ny):
            return False
        close = all(
            abs(a - b) <= tolerance_m
            for a, b in (
                (self.x0_m, other.x0_m),
                (self.y0_m, other.y0_m),
                (self.dx_m * self.nx, other.dx_m * other.nx),
                (self.dy_m * self.ny, other.dy_m * other.ny),
            )
        )
        return close and _crs(self.crs_wkt) == _crs(other.crs_wkt)


def regular_axis(values_m: NDArray[np.floating]) -> tuple[float, float] | None:
    """(first, step) of an evenly spaced coordinate axis in metres, or None if it is not."""
    values = np.asarray(values_m, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2 or not np.all(np.isfinite(values)):
        return None
    steps = np.diff(values)
    step = float(np.mean(steps))
    if step == 0 or np.max(np.abs(steps - step)) > RELATIVE_SPACING_TOLERANCE * abs(step):
        return None
    return float(values[0]), step


@lru_cache(maxsize=32)
def _crs(wkt: str) -> CRS:
    from pyproj import CRS

    return CRS.from_wkt(wkt)


@lru_cache(maxsize=32)
def to_lonlat(wkt: str) -> Transformer:
    """The (cached) transformer from the CRS ``wkt`` to longitude/latitude (x, y order)."""
    from pyproj import Transformer

    return Transformer.from_crs(_crs(wkt), "EPSG:4326", always_xy=True)


@lru_cache(maxsize=32)
def _from_lonlat(wkt: str) -> Transformer:
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:4326", _crs(wkt), always_xy=True)
