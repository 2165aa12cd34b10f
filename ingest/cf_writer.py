"""Write radar frames as CF-1.8 NetCDF files, the way operational feeds deliver them.

One file per frame, written atomically (temporary file in the same folder, then
``os.replace``), with xarray and the netCDF4 engine, zlib-compressed. Three quantities:

- ``"rain_rate"``: ``rainfall_rate`` (time, y, x) in mm h-1, int16 packed, scale 0.01;
- ``"reflectivity"``: ``reflectivity`` (time, y, x) in dBZ, int16 packed, scale 0.01;
- ``"accumulation"``: ``precipitation`` (y, x) in kg m-2 (= mm), float32, with scalar
  ``valid_time`` and ``start_time`` variables, like the BOM Rainfields files.

NaN (no observation) is written as ``_FillValue``. Packed values beyond the int16 range are
clipped (+-327.67 mm/h or dBZ, far beyond physical radar values). Grid: x and y in km, centred
on 0; y decreases with the row index (row 0 is the north edge).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from core.conversion import rain_rate_mmh_to_dbz
from ingest.hdf5_lock import HDF5_LOCK
from ingest.synth import SynthParams, synth_rain_rate_mmh

QUANTITIES = ("rain_rate", "reflectivity", "accumulation")
TIME_UNITS = "seconds since 1970-01-01 00:00:00"
NO_RAIN_DBZ = -32.0
DEFAULT_FEED_START = datetime(2026, 1, 1, tzinfo=UTC)
PACKED_SCALE = 0.01
_INT16_FILL = np.int16(-32768)
_FLOAT_FILL = np.float32(-9999.0)
_ZLIB_LEVEL = 4
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def grid_coords_km(
    shape: tuple[int, int], pixel_km: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(y_km, x_km) cell centres, centred on 0: y decreasing, shape (ny,); x increasing, (nx,)."""
    ny, nx = shape
    y_km = ((ny - 1) / 2.0 - np.arange(ny, dtype=np.float64)) * pixel_km
    x_km = (np.arange(nx, dtype=np.float64) - (nx - 1) / 2.0) * pixel_km
    return y_km, x_km


def rain_rate_to_dbz(rain_rate_mmh: ArrayLike) -> NDArray[np.float32]:
    """Marshall-Palmer dBZ as a feed writes it, any shape: R = 0 gives -32 dBZ, NaN stays NaN."""
    dbz = rain_rate_mmh_to_dbz(rain_rate_mmh)
    return np.where(np.isneginf(dbz), np.float32(NO_RAIN_DBZ), dbz).astype(np.float32)


def _epoch_seconds(value: datetime) -> np.int64:
    """Whole seconds since 1970-01-01T00:00Z of a tz-aware time (CF `TIME_UNITS`)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"time must be timezone-aware (UTC), got {value!r}")
    return np.int64(round((value - _EPOCH).total_seconds()))


def _packed_int16_encoding(
    field: NDArray[np.float32],
) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """Clip to the int16-packable range; encoding with scale 0.01, NaN -> _FillValue."""
    limit = np.float32(32767 * PACKED_SCALE)
    clipped = np.clip(field, -limit, limit)  # NaN stays NaN
    encoding = {
        "dtype": "int16",
        "scale_factor": PACKED_SCALE,
        "add_offset": 0.0,
        "_FillValue": _INT16_FILL,
        "zlib": True,
        "complevel": _ZLIB_LEVEL,
    }
    return clipped, encoding


def _time_attrs(long_name: str) -> dict[str, str]:
    """CF time attributes. Times are stored pre-encoded as int64 seconds: xarray's own
    encoder would shorten the units to 'seconds since 1970-01-01'."""
    return {
        "standard_name": "time",
        "long_name": long_name,
        "units": TIME_UNITS,
        "calendar": "standard",
    }


_GRIDDED_VARIABLES = {  # quantity -> (variable name, attributes); (time, y, x), int16 packed
    "rain_rate": (
        "rainfall_rate",
        {"standard_name": "rainfall_rate", "units": "mm h-1", "long_name": "rain rate"},
    ),
    "reflectivity": (
        "reflectivity",
        {
            "standard_name": "equivalent_reflectivity_factor",
            "units": "dBZ",
            "long_name": "equivalent reflectivity factor",
        },
    ),
}
_NO_FILL: dict[str, Any] = {"_FillValue": None}


def _grid_coords(shape: tuple[int, int], pixel_km: float) -> dict[str, Any]:
    """x and y coordinate variables (km) for a (ny, nx) grid."""
    y_km, x_km = grid_coords_km(shape, pixel_km)
    y_attrs = {
        "standard_name": "projection_y_coordinate",
        "long_name": "y distance from the grid centre (north positive)",
        "units": "km",
        "axis": "Y",
    }
    x_attrs = {
        "standard_name": "projection_x_coordinate",
        "long_name": "x distance from the grid centre (east positive)",
        "units": "km",
        "axis": "X",
    }
    return {"y": ("y", y_km, y_attrs), "x": ("x", x_km, x_attrs)}


def _gridded_dataset(
    field: NDArray[np.float32], valid_time: datetime, quantity: str, pixel_km: float
) -> tuple[xr.Dataset, dict[str, dict[str, Any]]]:
    """rain_rate / reflectivity: one int16-packed (time=1, y, x) variable and its encoding."""
    name, attrs = _GRIDDED_VARIABLES[quantity]
    values, packing = _packed_int16_encoding(field)
    coords = _grid_coords((field.shape[0], field.shape[1]), pixel_km)
    time_attrs = {**_time_attrs("valid time"), "axis": "T"}
    coords["time"] = ("time", np.array([_epoch_seconds(valid_time)]), time_attrs)
    ds = xr.Dataset({name: (("time", "y", "x"), values[None, ...], attrs)}, coords=coords)
    return ds, {name: packing, "time": _NO_FILL}


def _accumulation_dataset(
    depth_mm: NDArray[np.float32],
    valid_time: datetime,
    accumulation_min: float | None,
    pixel_km: float,
) -> tuple[xr.Dataset, dict[str, dict[str, Any]]]:
    """accumulation: float32 (y, x) `precipitation` plus scalar valid_time and start_time."""
    if accumulation_min is None or not accumulation_min > 0:
        raise ValueError("quantity 'accumulation' needs accumulation_min > 0")
    start_time = valid_time - timedelta(minutes=accumulation_min)
    attrs = {
        "standard_name": "precipitation_amount",
        "long_name": f"precipitation accumulated over {accumulation_min:g} min",
        "units": "kg m-2",
    }
    data_vars = {
        "precipitation": (("y", "x"), depth_mm, attrs),
        "valid_time": ((), _epoch_seconds(valid_time), _time_attrs("end of accumulation")),
        "start_time": ((), _epoch_seconds(start_time), _time_attrs("start of accumulation")),
    }
    coords = _grid_coords((depth_mm.shape[0], depth_mm.shape[1]), pixel_km)
    encoding = {
        "precipitation": {
            "dtype": "float32",
            "_FillValue": _FLOAT_FILL,
            "zlib": True,
            "complevel": _ZLIB_LEVEL,
        },
        "valid_time": _NO_FILL,
        "start_time": _NO_FILL,
    }
    return xr.Dataset(data_vars, coords=coords), encoding


def _build_dataset(
    field: NDArray[np.float32],
    valid_time: datetime,
    site_id: str,
    quantity: str,
    pixel_km: float,
    accumulation_min: float | None,
    grid_mapping: dict[str, Any] | None = None,
) -> tuple[xr.Dataset, dict[str, dict[str, Any]]]:
    """The dataset and its per-variable encoding for one frame (see `write_cf_frame`)."""
    if quantity in _GRIDDED_VARIABLES:
        ds, encoding = _gridded_dataset(field, valid_time, quantity, pixel_km)
        title = f"radar {quantity.replace('_', ' ')} at {site_id}"
    elif quantity == "accumulation":
        ds, encoding = _accumulation_dataset(field, valid_time, accumulation_min, pixel_km)
        title = f"radar {accumulation_min:g}-min precipitation accumulation at {site_id}"
    else:
        raise ValueError(f"unknown quantity {quantity!r}; expected one of {QUANTITIES}")
    encoding["x"] = _NO_FILL
    encoding["y"] = _NO_FILL
    if grid_mapping is not None:
        ds["crs"] = xr.Variable((), np.int32(0), dict(grid_mapping))
        for name in ds.data_vars:
            if name != "crs" and ds[name].ndim >= 2:
                ds[name].attrs["grid_mapping"] = "crs"
    ds.attrs = {
        "Conventions": "CF-1.8",
        "title": title,
        "source": "nowcast synthetic radar feed",
        "site_id": site_id,
    }
    return ds, encoding


def write_cf_frame(
    path: Path,
    field: np.ndarray,
    valid_time: datetime,
    site_id: str,
    quantity: str,
    pixel_km: float = 1.0,
    accumulation_min: float | None = None,
    grid_mapping: dict[str, Any] | None = None,
) -> None:
    """Write one (ny, nx) frame to `path` as CF-NetCDF, atomically.

    quantity: "rain_rate" (field in mm/h), "reflectivity" (dBZ) or "accumulation" (mm over
    `accumulation_min` minutes, which is then required). valid_time: tz-aware; stored in UTC.
    pixel_km: grid spacing (km). NaN cells become _FillValue. grid_mapping: the CF attributes
    of the projection the km grid is in (written as variable ``crs``); None: no georeference.
    """
    values = np.asarray(field, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"field must be 2-D (ny, nx), got shape {values.shape}")
    if not pixel_km > 0:
        raise ValueError(f"pixel_km must be positive, got {pixel_km}")
    ds, encoding = _build_dataset(
        values, valid_time, site_id, quantity, pixel_km, accumulation_min, grid_mapping
    )
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with HDF5_LOCK:
            ds.to_netcdf(tmp_name, mode="w", format="NETCDF4", engine="netcdf4", encoding=encoding)
        with open(tmp_name, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


SYNTH_GRID_MAPPING: dict[str, Any] = {
    "grid_mapping_name": "azimuthal_equidistant",
    "longitude_of_projection_origin": 5.18,
    "latitude_of_projection_origin": 52.1,
    "false_easting": 0.0,
    "false_northing": 0.0,
    "semi_major_axis": 6378137.0,
    "inverse_flattening": 298.257223563,
}
"""A radar-centred projection for synthetic sites (a fictional radar at 52.1 N, 5.18 E)."""


def feed_file_name(site_id: str, valid_time: datetime) -> str:
    """`{site_id}_{YYYYmmddTHHMMSSZ}.nc` for a tz-aware valid time (rendered in UTC)."""
    return f"{site_id}_{valid_time.astimezone(UTC):%Y%m%dT%H%M%SZ}.nc"


def write_synthetic_feed(
    out_dir: Path,
    n_frames: int,
    cadence_min: float = 6.0,
    site_id: str = "synth-01",
    seed: int = 0,
    quantity: str = "rain_rate",
    start: datetime | None = None,
    shape: tuple[int, int] = (512, 512),
    params: SynthParams | None = None,
    grid_mapping: dict[str, Any] | None = None,
) -> list[Path]:
    """Write `n_frames` synthetic frames (`ingest.synth`) every `cadence_min` minutes.

    Frame i is valid at start + i * cadence_min (start defaults to 2026-01-01T00:00Z, so the
    output is reproducible). "reflectivity" is Marshall-Palmer dBZ (-32 dBZ where dry);
    "accumulation" is R * cadence_min / 60 mm over cadence_min minutes. Grid cells of 1 km.
    `params` (optional) replaces the generator's defaults; its shape and cadence then win over
    the `shape` and `cadence_min` arguments; ``grid_mapping`` georeferences the frames (see
    `write_cf_frame`). Returns the written paths in time order.
    """
    if quantity not in QUANTITIES:
        raise ValueError(f"unknown quantity {quantity!r}; expected one of {QUANTITIES}")
    start_time = DEFAULT_FEED_START if start is None else start
    _epoch_seconds(start_time)  # fail early on a naive start
    if params is None:
        params = SynthParams(shape=shape, cadence_min=cadence_min)
    cadence_min = params.cadence_min
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for i, rain_mmh in enumerate(synth_rain_rate_mmh(n_frames, params, seed)):
        valid_time = start_time + timedelta(minutes=i * cadence_min)
        accumulation_min: float | None = None
        field: NDArray[np.float32] = rain_mmh
        if quantity == "reflectivity":
            field = rain_rate_to_dbz(rain_mmh)
        elif quantity == "accumulation":
            field = rain_mmh * np.float32(cadence_min / 60.0)
            accumulation_min = cadence_min
        path = out_dir / feed_file_name(site_id, valid_time)
        write_cf_frame(
            path,
            field,
            valid_time,
            site_id,
            quantity,
            params.pixel_km,
            accumulation_min,
            grid_mapping,
        )
        paths.append(path)
    return paths
