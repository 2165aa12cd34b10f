"""Multi-time CF-NetCDF archives: one file holding many frames along its ``time`` axis.

Radar archives are kept this way (one file per continuous run or rainy event, e.g.
``../shared/data/archives``): the precipitation variable is (time, y, x), packed as the file
says (``scale_factor``, ``add_offset``, ``_FillValue``; netCDF4 decodes them). Each time step
is a frame and goes through the same checks as a single-frame file (`ingest.reader`): units,
physical bounds, the site id, the grid's georeference.

- `is_multitime`: whether a file is such an archive (read from its metadata only);
- `archive_fields`: its frames as `RadarField`, in time order, one time step read at a time
  (an archive never sits in memory whole), a bad step skipped with a warning;
- `split_archive`: its frames as single-frame CF-NetCDF files (bytes, packing and attributes
  kept), so that the ingest takes an archive as a feed of frames, each archived and windowed
  like a frame a radar delivered.

A file without a site id in its attributes takes the caller's, else its folder's name
(``taasrad19-trentino-5min-64px/``): an archive folder holds one radar.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import netCDF4
import numpy as np

from core.frame import MAX_GRID_CELLS, FrameRejected, RadarField, RejectReason
from ingest.hdf5_lock import HDF5_LOCK
from ingest.reader import field_from_values, precipitation_variable, slugify_site_id

log = logging.getLogger(__name__)


def is_multitime(path: Path) -> bool:
    """Whether ``path`` is a CF-NetCDF file whose precipitation has a time axis of more than
    one step; False for anything else (a single frame, ODIM_H5, an unreadable file)."""
    try:
        with HDF5_LOCK, netCDF4.Dataset(path, mode="r") as ds:
            return _time_axis(ds, precipitation_variable(ds)) is not None
    except Exception:  # not NetCDF, no precipitation: the single-frame reader says why
        return False


def _time_axis(ds: netCDF4.Dataset, name: str) -> netCDF4.Variable | None:
    """The time coordinate of variable ``name`` when it is (time, y, x) with time > 1."""
    var = ds.variables[name]
    if var.ndim != 3 or var.shape[0] < 2:
        return None
    time_var = ds.variables.get(var.dimensions[0])
    if time_var is None or getattr(time_var, "standard_name", "time") != "time":
        return None
    return time_var


def archive_times(ds: netCDF4.Dataset, time_var: netCDF4.Variable) -> list[datetime]:
    """The valid times (UTC) of an archive's time axis, decoded from its CF units."""
    values = np.ma.filled(np.ma.asarray(time_var[:], dtype=np.float64), np.nan)
    if not np.isfinite(values).all():
        raise FrameRejected(RejectReason.NO_VALID_TIME, f"{time_var.name} has missing times")
    decoded = netCDF4.num2date(
        values,
        time_var.units,
        calendar=getattr(time_var, "calendar", "standard"),
        only_use_cftime_datetimes=False,
        only_use_python_datetimes=True,
    )
    stamps: list[datetime] = np.asarray(decoded, dtype=object).ravel().tolist()
    return [t.replace(tzinfo=UTC) for t in stamps]


def archive_first_time(path: Path) -> datetime | None:
    """The earliest valid time of a multi-time archive, from its time axis only; None for any
    other file."""
    try:
        with HDF5_LOCK, netCDF4.Dataset(path, mode="r") as ds:
            time_var = _time_axis(ds, precipitation_variable(ds))
            return min(archive_times(ds, time_var)) if time_var is not None else None
    except Exception:  # not an archive: the single-frame peek says what it is
        return None


def default_site_id(path: Path) -> str:
    """The site id of an archive without one in its attributes: its folder's name."""
    return slugify_site_id(path.resolve().parent.name)[:64]


def archive_fields(
    path: Path, site_id: str | None = None, zr: tuple[float, float] = (200.0, 1.6)
) -> Iterator[RadarField]:
    """Each frame of the archive at ``path`` as a `RadarField`, in time order.

    One time step is read at a time; a step that fails the reader's checks (all missing,
    impossible values) is skipped with a warning. Raises `FrameRejected` when the file is no
    multi-time archive or its grid exceeds `MAX_GRID_CELLS`.
    """
    with HDF5_LOCK:
        ds = netCDF4.Dataset(path, mode="r")
    try:
        name = precipitation_variable(ds)
        time_var = _time_axis(ds, name)
        if time_var is None:
            raise FrameRejected(RejectReason.BAD_SHAPE, f"{path.name}: {name} has no time axis")
        var = ds.variables[name]
        if var.shape[1] * var.shape[2] > MAX_GRID_CELLS:
            raise FrameRejected(RejectReason.BAD_SHAPE, f"{name} grid {var.shape[1:]} too large")
        site = site_id or _attribute_site(ds) or default_site_id(path)
        times = archive_times(ds, time_var)
        order = sorted(range(len(times)), key=times.__getitem__)
        for index in order:
            with HDF5_LOCK:
                step = np.ma.filled(var[index].astype(np.float32), np.nan)
            try:
                yield field_from_values(ds, name, step, times[index], site, zr)
            except FrameRejected as rejected:
                log.warning("%s at %s skipped: %s", path.name, times[index], rejected)
    finally:
        with HDF5_LOCK:
            ds.close()


def _attribute_site(ds: netCDF4.Dataset) -> str | None:
    """The site id the file's attributes give (as `ingest.reader` reads them), else None."""
    raw = getattr(ds, "site_id", None)
    return slugify_site_id(str(raw)) if raw else None


def split_archive(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, single-frame CF-NetCDF bytes) of each time step of the archive, in time order.

    Each file is the archive cut to one time step: the variables, their packing and every
    attribute as stored (so it reads exactly as that step of the archive), compressed, with
    the archive's site id (`default_site_id` where it names none); named
    ``<archive stem>_<YYYYmmddTHHMMZ>.nc``. The archive is opened once for all its steps.
    """
    times = archive_step_times(path)
    yield from _step_files(path, sorted(range(len(times)), key=times.__getitem__))


def archive_step_times(path: Path) -> list[datetime]:
    """The valid time of each step of the archive at ``path``, in its stored order."""
    with HDF5_LOCK, netCDF4.Dataset(path, mode="r") as ds:
        time_var = _time_axis(ds, precipitation_variable(ds))
        if time_var is None:
            raise FrameRejected(RejectReason.BAD_SHAPE, f"{path.name}: no time axis")
        return archive_times(ds, time_var)


def archive_step(path: Path, index: int) -> tuple[str, bytes]:
    """(name, single-frame CF-NetCDF bytes) of step ``index`` (stored order) of the archive,
    as `split_archive` writes it."""
    return next(_step_files(path, [index]))


def _step_files(path: Path, indices: list[int]) -> Iterator[tuple[str, bytes]]:
    """The single-frame files of the archive's steps ``indices`` (stored order), in that
    order, from one opening of the archive."""
    import xarray as xr

    with HDF5_LOCK, netCDF4.Dataset(path, mode="r") as ds:
        name = precipitation_variable(ds)
        time_var = _time_axis(ds, name)
        if time_var is None:
            raise FrameRejected(RejectReason.BAD_SHAPE, f"{path.name}: no time axis")
        times = archive_times(ds, time_var)
        time_dim = time_var.name
    with HDF5_LOCK:
        source = xr.open_dataset(path, decode_cf=False, mask_and_scale=False, cache=False)
    try:
        for index in indices:
            with HDF5_LOCK:
                frame = source.isel({time_dim: [index]}).load()
            if not frame.attrs.get("site_id"):  # a frame file names its site, as a feed's does
                frame.attrs["site_id"] = default_site_id(path)
            yield f"{path.stem}_{times[index]:%Y%m%dT%H%MZ}.nc", _to_bytes(frame, name)
    finally:
        with HDF5_LOCK:
            source.close()


def _to_bytes(frame: object, name: str) -> bytes:
    """A one-step xarray Dataset (undecoded) as NetCDF-4 bytes, ``name`` compressed."""
    import xarray as xr

    assert isinstance(frame, xr.Dataset)
    for var in frame.variables.values():
        var.encoding = {}
    encoding = {name: {"zlib": True, "complevel": 4}}
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "frame.nc"
        with HDF5_LOCK:
            frame.to_netcdf(target, engine="netcdf4", encoding=encoding)
        return target.read_bytes()
