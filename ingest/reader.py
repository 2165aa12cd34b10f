"""Read one CF-NetCDF radar file into a `RadarField` (netCDF4, which does the CF decoding).

The precipitation variable is found by its CF ``standard_name`` and ``units`` (see
`ingest.quantities`), never by a hard-coded variable name. Valid time comes from the time
variable; the site id from the file's attributes (``site_id``, else ``station_name`` and
``station_id``) unless the caller names it. Every failure raises `FrameRejected` with a reason.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
from numpy.typing import NDArray

from core.frame import MAX_GRID_CELLS, FrameRejected, RadarField, RejectReason
from core.settings import SITE_ID_PATTERN
from ingest.cf_georef import cf_georef
from ingest.hdf5_lock import HDF5_LOCK
from ingest.odim import HDF5_SIGNATURE, is_odim, peek_odim, read_odim
from ingest.quantities import Quantity, get_quantity, quantity_names

FRAME_SUFFIXES = (".nc", ".nc4", ".netcdf", ".h5", ".hdf5", ".hdf")
"""File suffixes of radar frames: CF-NetCDF and ODIM_H5 (HDF5)."""
DBZ_PHYSICAL = (-100.0, 80.0)
"""Reflectivity a weather radar can measure, dBZ: beyond it a cell is no echo of weather."""
RAIN_RATE_MAX_MMH = 300.0
"""Largest physical rain rate, mm/h (the world's 1-hour record is about 305 mm); a rain
amount is judged by its mean rate over its interval."""
BEYOND_BOUNDS_MAX_FRACTION = 0.01
"""Cells beyond the physical bounds are read as nodata (NaN) and counted; more than this
fraction of the observed cells and the frame is refused (bad_values)."""
# Real feeds carry a few slightly negative cells (BOM's bias correction gives -0.1 mm on single
# cells): up to this fraction of the observed cells they are read as 0 mm; more is a bad frame.
NEGATIVE_RAIN_MAX_FRACTION = 0.01


def read_radar_file(
    path: Path, site_id: str | None = None, zr: tuple[float, float] = (200.0, 1.6)
) -> RadarField:
    """Read the file at ``path``; see `read_radar_bytes`."""
    return read_radar_bytes(path.read_bytes(), path.name, site_id, zr)


def read_radar_bytes(
    raw: bytes, name: str, site_id: str | None = None, zr: tuple[float, float] = (200.0, 1.6)
) -> RadarField:
    """Parse a NetCDF file held in memory; convert its precipitation to dBZ with Z = a R^b.

    ``name`` is only used in messages. Raises `FrameRejected` with the reason on any failure.
    A ``site_id`` named by the caller (``--site``, a pushed frame's ``site`` field) must match
    `SITE_ID_PATTERN` like one read from the file: it becomes a folder name in the archive.
    """
    if site_id and not re.fullmatch(SITE_ID_PATTERN, site_id):
        raise FrameRejected(
            RejectReason.NO_SITE, f"site id {site_id!r} does not match {SITE_ID_PATTERN}"
        )
    with HDF5_LOCK:
        return _read_radar_bytes(raw, name, site_id, zr)


def _read_radar_bytes(
    raw: bytes, name: str, site_id: str | None, zr: tuple[float, float]
) -> RadarField:
    if is_odim(raw):
        return _read_odim(raw, name, site_id, zr)
    try:
        ds = netCDF4.Dataset(name, mode="r", memory=raw)
    except Exception as exc:  # netCDF4/HDF5 raise OSError, RuntimeError, ValueError ...
        raise FrameRejected(RejectReason.UNREADABLE, f"cannot open as NetCDF: {exc}") from exc
    try:
        return _read_dataset(ds, site_id, zr)
    except FrameRejected:
        raise
    except Exception as exc:  # a corrupt chunk or attribute fails only when read
        raise FrameRejected(RejectReason.UNREADABLE, f"cannot read data: {exc}") from exc
    finally:
        ds.close()


def _attr(var: netCDF4.Variable | netCDF4.Dataset, key: str) -> Any:
    return var.getncattr(key) if key in var.ncattrs() else None


def _read_dataset(ds: netCDF4.Dataset, site_id: str | None, zr: tuple[float, float]) -> RadarField:
    name = precipitation_variable(ds)
    var = ds.variables[name]
    shape = tuple(n for n in var.shape if n != 1)
    if len(shape) != 2 or min(shape) < 2:
        raise FrameRejected(RejectReason.BAD_SHAPE, f"{name} has shape {var.shape}, need (y, x)")
    if shape[0] * shape[1] > MAX_GRID_CELLS:
        raise FrameRejected(RejectReason.BAD_SHAPE, f"{name} grid {shape} is too large")
    valid_time = _valid_time(ds)
    # CF decoding (_FillValue, missing_value, valid range, scale_factor, add_offset) by netCDF4
    decoded = var[...]
    values = np.ma.filled(decoded.astype(np.float32), np.nan).reshape(shape)
    return field_from_values(ds, name, values, valid_time, site_id, zr)


def precipitation_variable(ds: netCDF4.Dataset) -> str:
    """The name of the file's precipitation variable; `FrameRejected` when none is found or
    its units are not its quantity's."""
    name, quantity = _find_precipitation(ds)
    units = str(_attr(ds.variables[name], "units") or "")
    if units not in quantity.units:
        raise FrameRejected(
            RejectReason.WRONG_UNITS,
            f"{name} ({quantity.standard_name}) has units {units!r}; "
            f"expected one of {sorted(quantity.units)}",
        )
    return name


def field_from_values(
    ds: netCDF4.Dataset,
    name: str,
    values: NDArray[np.float32],
    valid_time: datetime,
    site_id: str | None,
    zr: tuple[float, float],
) -> RadarField:
    """The `RadarField` of one (H, W) grid of the CF-decoded variable ``name`` of ``ds``
    (NaN outside coverage), valid at ``valid_time``: checked, bounded and brought to dBZ.
    ``values`` is changed in place (cells beyond the physical bounds become NaN)."""
    quantity = get_quantity(str(_attr(ds.variables[name], "standard_name")))
    accumulation_min = _accumulation_min(ds, valid_time) if quantity.needs_interval else None
    _check_values(values, quantity, name)
    beyond = _mask_beyond_bounds(values, quantity, accumulation_min, name)
    if quantity.is_rain:
        values = np.maximum(values, np.float32(0.0))  # the few tolerated negative cells: 0 mm
    return RadarField(
        site_id=site_id or _site_id(ds),
        valid_time=valid_time,
        dbz=quantity.to_dbz(values, accumulation_min, zr[0], zr[1]),
        quantity=quantity.standard_name,
        source_units=str(_attr(ds.variables[name], "units")),
        accumulation_min=accumulation_min,
        georef=cf_georef(ds, ds.variables[name]),
        cells_beyond_bounds=beyond,
    )


def _read_odim(raw: bytes, name: str, site_id: str | None, zr: tuple[float, float]) -> RadarField:
    """An ODIM_H5 product (`ingest.odim`) through the same checks as a NetCDF frame."""
    try:
        product = read_odim(raw, name)
    except FrameRejected:
        raise
    except Exception as exc:  # a corrupt chunk or attribute fails only when read
        raise FrameRejected(RejectReason.UNREADABLE, f"cannot read ODIM data: {exc}") from exc
    quantity = get_quantity(product.standard_name)
    values = product.values  # its size was checked before reading (`ingest.odim`)
    name = f"ODIM {product.standard_name}"
    _check_values(values, quantity, name)
    beyond = _mask_beyond_bounds(values, quantity, product.accumulation_min, name)
    if quantity.is_rain:
        values = np.maximum(values, np.float32(0.0))
    if site_id is None:
        if product.site_id is None:
            raise FrameRejected(RejectReason.NO_SITE, "what/source names no site; name the site")
        site_id = slugify_site_id(product.site_id)
        if not re.fullmatch(SITE_ID_PATTERN, site_id):
            raise FrameRejected(RejectReason.NO_SITE, f"site id {product.site_id!r} is invalid")
    return RadarField(
        site_id=site_id,
        valid_time=product.valid_time,
        dbz=quantity.to_dbz(values, product.accumulation_min, zr[0], zr[1]),
        quantity=quantity.standard_name,
        source_units=product.units,
        accumulation_min=product.accumulation_min,
        georef=product.georef,
        cells_beyond_bounds=beyond,
    )


def _find_precipitation(ds: netCDF4.Dataset) -> tuple[str, Quantity]:
    found: dict[str, str] = {}
    for name, var in ds.variables.items():
        standard_name = _attr(var, "standard_name")
        if standard_name in quantity_names() and var.ndim >= 2:
            found.setdefault(str(standard_name), str(name))
    for standard_name in quantity_names():  # registry order is the preference
        if standard_name in found:
            return found[standard_name], get_quantity(standard_name)
    raise FrameRejected(
        RejectReason.NO_PRECIPITATION_VARIABLE,
        f"no 2-D variable has a standard_name among {quantity_names()}; "
        f"variables: {sorted(map(str, ds.variables))}",
    )


def _time_variable(ds: netCDF4.Dataset) -> netCDF4.Variable | None:
    variables = ds.variables
    if "valid_time" in variables:
        return variables["valid_time"]
    for var in variables.values():
        if _attr(var, "standard_name") == "time":
            return var
    return variables.get("time")


def _decode_time(var: netCDF4.Variable) -> datetime | None:
    """The single time a CF time variable holds, in UTC; None when it is not one such time."""
    units = _attr(var, "units")
    if var.size != 1:  # checked before reading: a time axis is no single valid time
        return None
    values = np.ma.filled(np.ma.asarray(var[...], dtype=np.float64), np.nan).ravel()
    if not isinstance(units, str) or values.size != 1 or not np.isfinite(values[0]):
        return None
    decoded = netCDF4.num2date(
        values[0],
        units,
        calendar=_attr(var, "calendar") or "standard",
        only_use_cftime_datetimes=False,
        only_use_python_datetimes=True,
    )
    if not isinstance(decoded, datetime):
        return None
    return decoded.replace(tzinfo=UTC) if decoded.tzinfo is None else decoded.astimezone(UTC)


def _valid_time(ds: netCDF4.Dataset) -> datetime:
    var = _time_variable(ds)
    if var is None:
        raise FrameRejected(RejectReason.NO_VALID_TIME, "no time variable (standard_name 'time')")
    try:
        valid_time = _decode_time(var)
    except (ValueError, TypeError, OverflowError) as exc:
        raise FrameRejected(
            RejectReason.NO_VALID_TIME, f"time variable {var.name!r}: {exc}"
        ) from exc
    if valid_time is None:
        raise FrameRejected(
            RejectReason.NO_VALID_TIME,
            f"time variable {var.name!r} is not one decodable time with CF units",
        )
    return valid_time


def _accumulation_min(ds: netCDF4.Dataset, valid_time: datetime) -> float:
    start = ds.variables.get("start_time")
    start_time = _decode_time(start) if start is not None else None
    if start_time is not None:
        minutes = (valid_time - start_time) / timedelta(minutes=1)
        if minutes > 0:
            return minutes
    raise FrameRejected(
        RejectReason.NO_VALID_TIME,
        "precipitation_amount needs its accumulation interval: a 'start_time' before the valid "
        "time",
    )


def _check_values(values: np.ndarray, quantity: Quantity, name: str) -> None:
    finite = np.isfinite(values)
    if not finite.any():
        if np.isinf(values).any():
            raise FrameRejected(RejectReason.BAD_VALUES, f"{name} holds infinite values")
        raise FrameRejected(RejectReason.ALL_NAN, f"{name} has no observed cell (all NaN)")
    if np.isinf(values).any():
        raise FrameRejected(RejectReason.BAD_VALUES, f"{name} holds infinite values")
    lowest = float(values[finite].min())
    if quantity.is_rain and lowest < 0:
        negative_fraction = float((values[finite] < 0).mean())
        if negative_fraction > NEGATIVE_RAIN_MAX_FRACTION:
            raise FrameRejected(
                RejectReason.BAD_VALUES,
                f"{name} has negative rain on {negative_fraction:.1%} of cells (min {lowest})",
            )


def _mask_beyond_bounds(
    values: np.ndarray, quantity: Quantity, accumulation_min: float | None, name: str
) -> int:
    """Set the cells of ``values`` (H, W) beyond the physical bounds to NaN, in place; how many.

    Rain: above `RAIN_RATE_MAX_MMH` (an amount by its mean rate over ``accumulation_min``);
    reflectivity: outside `DBZ_PHYSICAL`. A frame with more than `BEYOND_BOUNDS_MAX_FRACTION`
    of its observed cells beyond them is refused: it is no radar's measurement.
    """
    finite = np.isfinite(values)
    if quantity.is_rain:
        per_hour = 60.0 / accumulation_min if accumulation_min else 1.0
        beyond = finite & (values * per_hour > RAIN_RATE_MAX_MMH)
        bound = f"above {RAIN_RATE_MAX_MMH:g} mm/h"
    else:
        beyond = finite & ((values < DBZ_PHYSICAL[0]) | (values > DBZ_PHYSICAL[1]))
        bound = f"outside {DBZ_PHYSICAL[0]:g}..{DBZ_PHYSICAL[1]:g} dBZ"
    count = int(beyond.sum())
    if count == 0:
        return 0
    fraction = count / int(finite.sum())
    if fraction > BEYOND_BOUNDS_MAX_FRACTION:
        raise FrameRejected(
            RejectReason.BAD_VALUES,
            f"{name}: {fraction:.1%} of the observed cells are {bound} (max "
            f"{float(values[finite].max()):.4g}); not a radar measurement",
        )
    values[beyond] = np.nan
    return count


def slugify_site_id(raw: str) -> str:
    """Lower-case, and anything outside [a-z0-9._-] becomes '-'."""
    return re.sub(r"[^a-z0-9._-]+", "-", raw.strip().lower()).strip("-")


def _site_id(ds: netCDF4.Dataset) -> str:
    attrs = {key: ds.getncattr(key) for key in ds.ncattrs()}
    if attrs.get("site_id"):
        raw = str(attrs["site_id"])
    elif attrs.get("station_name") and attrs.get("station_id") is not None:
        raw = f"{attrs['station_name']}-{attrs['station_id']}"
    elif attrs.get("station_id") is not None or attrs.get("station_name"):
        raw = str(attrs.get("station_id") or attrs.get("station_name"))
    else:
        raise FrameRejected(
            RejectReason.NO_SITE, "no site_id/station_id/station_name attribute; name the site"
        )
    site = slugify_site_id(raw)
    if not re.fullmatch(SITE_ID_PATTERN, site):
        raise FrameRejected(RejectReason.NO_SITE, f"site id {raw!r} cannot be made valid")
    return site


def peek_valid_time(path: Path) -> datetime | None:
    """Valid time of a file without reading its grid; None where it cannot be told."""
    odim = _peek_odim(path)
    if odim is not None:
        return odim[0]
    try:
        with HDF5_LOCK, netCDF4.Dataset(path, mode="r") as ds:
            return _valid_time(ds)
    except Exception:  # an unreadable file sorts first and is quarantined when processed
        return None


def peek_site_id(path: Path) -> str | None:
    """Site id of a file (as the ingest derives it) without reading its grid; None if unknown."""
    odim = _peek_odim(path)
    if odim is not None:
        return slugify_site_id(odim[1]) if odim[1] else None
    try:
        with HDF5_LOCK, netCDF4.Dataset(path, mode="r") as ds:
            return _site_id(ds)
    except Exception:  # unreadable or without a site: the ingest says why when it gets there
        return None


def _peek_odim(path: Path) -> tuple[datetime | None, str | None] | None:
    """`ingest.odim.peek_odim` of an HDF5 file; None without opening other files as HDF5."""
    try:
        with path.open("rb") as handle:
            if handle.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
                return None
    except OSError:
        return None
    return peek_odim(path)


def frame_files(folder: Path, recursive: bool = True) -> list[Path]:
    """The radar frame files in ``folder`` (by suffix, hidden files left out), sorted."""
    found = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(
        p
        for p in found
        if p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )
