"""The radar's own frame (`ingest.native.NativeFrame`) as products: a JSON summary with a
coarsened field, and CF-1.8 NetCDF at the radar's grid and resolution (NaN where the radar did
not see, written as ``_FillValue``; projection coordinates and ``crs`` where the site is
georeferenced)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from core.georef import GridGeoref
from ingest.cf_writer import TIME_UNITS, _epoch_seconds
from ingest.native import NativeFrame
from service.formats.netcdf import TIME_UNITS_UTC, dataset_to_netcdf, geo_coords


def block_max(rain_mmh: NDArray[np.float32], size: int) -> NDArray[np.float32]:
    """(H, W) -> (ceil(H / size), ceil(W / size)): each block's maximum, so a coarsened field
    keeps the peaks a warning needs; NaN where no cell of the block was observed."""
    h, w = rain_mmh.shape
    rows, cols = -(-h // size), -(-w // size)
    padded = np.full((rows * size, cols * size), np.nan, dtype=np.float32)
    padded[:h, :w] = rain_mmh
    blocks = padded.reshape(rows, size, cols, size)
    seen = np.isfinite(blocks).any(axis=(1, 3))
    out = np.full((rows, cols), np.nan, dtype=np.float32)
    out[seen] = np.nanmax(blocks, axis=(1, 3), initial=-np.inf, where=np.isfinite(blocks))[seen]
    return out


def native_to_netcdf(frame: NativeFrame, georef: GridGeoref | None) -> bytes:
    """CF-1.8 NetCDF4 bytes of the radar's frame: ``rainfall_rate`` (time=1, y, x) in mm h-1."""
    rows, cols = frame.rain_mmh.shape
    coords: dict[str, Any] = {
        "time": (
            "time",
            np.array([_epoch_seconds(frame.valid_time)], dtype=np.float64),
            {"standard_name": "time", "units": TIME_UNITS_UTC, "axis": "T"},
        )
    }
    if georef is not None and (georef.ny, georef.nx) == (rows, cols):
        coords.update(geo_coords(georef))
    else:
        coords["y"] = (
            "y",
            np.arange(rows, dtype=np.int32),
            {"long_name": "grid row", "units": "1"},
        )
        coords["x"] = (
            "x",
            np.arange(cols, dtype=np.int32),
            {"long_name": "grid column", "units": "1"},
        )
    attrs = {
        "standard_name": "rainfall_rate",
        "long_name": "the radar's rain rate on its own grid (packed to 0.01 mm/h)",
        "units": "mm h-1",
        "cell_methods": "time: point",
    }
    if "crs" in coords:
        attrs["grid_mapping"] = "crs"
        attrs["coordinates"] = "lat lon"
    ds = xr.Dataset(
        {"rainfall_rate": (("time", "y", "x"), frame.rain_mmh[np.newaxis], attrs)},
        coords=coords,
        attrs={
            "Conventions": "CF-1.8",
            "title": f"Radar rain rate of {frame.site_id} on its own grid",
            "site_id": frame.site_id,
            "source": "radar observation, as ingested (ingest.native)",
            "comment": f"time in {TIME_UNITS}; NaN (_FillValue) where the radar did not see",
        },
    )
    return dataset_to_netcdf(ds)
