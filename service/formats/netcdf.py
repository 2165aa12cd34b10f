"""A forecast as a CF-1.8 NetCDF4 file, in memory (`forecast_to_netcdf`).

Layout:

- ``rainfall_rate`` (time, y, x): float32 rain rate in mm h-1 (= ``Forecast.rain_mmh()``),
  zlib-compressed, NaN written as ``_FillValue``; ``cell_methods`` "time: point";
- ``time`` (time): valid time of each lead, float64 seconds since 1970-01-01 00:00:00 UTC;
- ``forecast_period`` (time): lead time in minutes (auxiliary coordinate);
- ``forecast_reference_time`` (scalar): the issue time, same units as ``time``;
- ``y``, ``x``: 0-based row and column indices of the normalised grid, units "1".

The normalised grid is a resized centre crop of the site's radar grid; a forecast carries
neither its cell size nor its georeference, so ``y`` and ``x`` are index coordinates with no
``axis`` attribute (CF's axis Y/X would declare them latitude/longitude). Times are float64,
not int64: CF 1.8 does not list 64-bit integers among its data types.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import xarray as xr

from ingest.cf_writer import TIME_UNITS, _epoch_seconds, _time_attrs
from ingest.hdf5_lock import HDF5_LOCK
from model.nets.architectures import PAPER, architecture_names, get_architecture
from service.forecast import Forecast

TIME_UNITS_UTC = f"{TIME_UNITS} UTC"
FILL_VALUE = np.float32(-9999.0)
_ZLIB_LEVEL = 4
_PYSTEPS = (
    "Pulkkinen et al. (2019), Pysteps: an open-source Python library for probabilistic "
    "precipitation nowcasting (v1.0), Geosci. Model Dev. 12, 4185-4219"
)
BASELINE_REFERENCES: dict[str, str] = {  # method -> what it is and where it is described
    "extrapolation": (
        "Lucas-Kanade optical flow and semi-Lagrangian extrapolation (ROVER-like): "
        f"{_PYSTEPS}; baseline of {PAPER}"
    ),
    "sprog": (
        "S-PROG: cascade decomposition, AR(2) per level and semi-Lagrangian extrapolation "
        f"(Seed 2003, J. Appl. Meteor. 42, 381-388), as implemented in {_PYSTEPS}"
    ),
    "persistence": f"Eulerian persistence of the newest observed frame; baseline of {PAPER}",
}
"""The learned methods' references come from the architecture registry."""


def method_reference(method: str) -> str:
    """Citation for ``method``; an unregistered method still cites the pre-processing paper."""
    name = method.lower()
    if name in BASELINE_REFERENCES:
        return BASELINE_REFERENCES[name]
    if name in architecture_names():
        return get_architecture(name).reference
    return f"grey-level pre-processing: {PAPER}"


def _utc_text(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _coords(forecast: Forecast) -> dict[str, Any]:
    """time, forecast_period, forecast_reference_time, y and x (see the module docstring)."""
    _, ny, nx = forecast.grey.shape
    valid_s = np.array([_epoch_seconds(t) for t in forecast.valid_times], dtype=np.float64)
    issue_s = np.float64(_epoch_seconds(forecast.issue_time))
    time_attrs = {**_time_attrs("valid time"), "units": TIME_UNITS_UTC, "axis": "T"}
    issue_attrs = {
        **_time_attrs("issue time: valid time of the newest input frame"),
        "standard_name": "forecast_reference_time",
        "units": TIME_UNITS_UTC,
    }
    period_attrs = {
        "standard_name": "forecast_period",
        "long_name": "lead time after the issue time",
        "units": "minutes",
    }
    lead_min = np.asarray(forecast.lead_minutes, dtype=np.float64)
    row_attrs = {"long_name": "grid row, 0 = first row of the normalised grid", "units": "1"}
    col_attrs = {"long_name": "grid column, 0 = first column of the normalised grid", "units": "1"}
    return {
        "time": ("time", valid_s, time_attrs),
        "forecast_period": ("time", lead_min, period_attrs),
        "forecast_reference_time": ((), issue_s, issue_attrs),
        "y": ("y", np.arange(ny, dtype=np.int32), row_attrs),
        "x": ("x", np.arange(nx, dtype=np.int32), col_attrs),
    }


def _global_attrs(forecast: Forecast, written_at: datetime) -> dict[str, str]:
    c = forecast.conversion
    return {
        "Conventions": "CF-1.8",
        "title": f"{forecast.method} precipitation nowcast for radar site {forecast.site_id}",
        "institution": "nowcast precipitation nowcasting service",
        "source": f"{forecast.method} nowcast from radar, model version {forecast.model_version}",
        "history": (
            f"{_utc_text(forecast.created_at)} forecast made; "
            f"{_utc_text(written_at)} written by service.formats.netcdf"
        ),
        "references": method_reference(forecast.method),
        "comment": (
            f"rain rate from grey levels g: dBZ = {c.dbz_min:g} + g * "
            f"({c.dbz_max:g} - {c.dbz_min:g}), Z = {c.zr_a:g} R^{c.zr_b:g}; g = 0 is 0 mm h-1"
        ),
        "site_id": forecast.site_id,
        "method": forecast.method,
        "model_version": forecast.model_version,
        "norm_version": forecast.norm_version,
    }


def forecast_dataset(forecast: Forecast, written_at: datetime | None = None) -> xr.Dataset:
    """The forecast as an xarray Dataset with CF attributes (layout in the module docstring).

    ``written_at``: the writing time stamped in ``history`` (default: now, UTC).
    """
    attrs = {
        "standard_name": "rainfall_rate",
        "long_name": "forecast rain rate",
        "units": "mm h-1",
        "cell_methods": "time: point",
        "coordinates": "forecast_period forecast_reference_time",
    }
    rain = xr.Variable(("time", "y", "x"), forecast.rain_mmh().astype(np.float32), attrs)
    ds = xr.Dataset({"rainfall_rate": rain}, coords=_coords(forecast))
    ds.attrs = _global_attrs(forecast, datetime.now(UTC) if written_at is None else written_at)
    return ds


def forecast_to_netcdf(forecast: Forecast) -> bytes:
    """The bytes of a CF-1.8 NetCDF4 (HDF5) file of the forecast, built in memory."""
    ds = forecast_dataset(forecast)
    # coordinates have no missing values: no _FillValue
    encoding: dict[str, dict[str, Any]] = {str(name): {"_FillValue": None} for name in ds.coords}
    encoding["rainfall_rate"] = {
        "dtype": "float32",
        "_FillValue": FILL_VALUE,
        "zlib": True,
        "complevel": _ZLIB_LEVEL,
    }
    with HDF5_LOCK:  # HDF5 is not thread-safe; the API renders in worker threads
        return bytes(ds.to_netcdf(engine="netcdf4", format="NETCDF4", encoding=encoding))
