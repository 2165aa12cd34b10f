"""A forecast as a CF-1.8 NetCDF4 file with ACDD-1.3 discovery attributes, in memory
(`forecast_to_netcdf`).

Layout:

- ``rainfall_rate`` (time, y, x): float32 rain rate in mm h-1 (= ``Forecast.rain_mmh()``),
  zlib-compressed, NaN written as ``_FillValue``; ``cell_methods`` "time: point";
- ``time`` (time): valid time of each lead, float64 seconds since 1970-01-01 00:00:00 UTC;
- ``forecast_period`` (time): lead time in minutes (auxiliary coordinate);
- ``forecast_reference_time`` (scalar): the issue time, same units as ``time``;
- for a georeferenced site (the forecast carries its `core.georef.GridGeoref`): ``y``, ``x``
  projection coordinates of the cell centres in m (``axis`` Y/X), the grid-mapping variable
  ``crs`` (CF parameters and ``crs_wkt``) named by ``rainfall_rate``'s ``grid_mapping``, and
  2-D ``lat``/``lon`` auxiliary coordinates; the ACDD bounding box attributes;
- otherwise ``y``, ``x`` are 0-based row and column indices of the normalised grid, units
  "1", with no ``axis`` (CF's axis Y/X would declare them spatial coordinates).

Times are float64, not int64: CF 1.8 does not list 64-bit integers among its data types.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import xarray as xr

from core.georef import GridGeoref
from ingest.cf_writer import TIME_UNITS, _epoch_seconds, _time_attrs
from ingest.hdf5_lock import HDF5_LOCK
from model.methods.specs import get_spec
from model.nets.architectures import PAPER
from service.forecast import Forecast
from service.formats.identity import ProductIdentity

TIME_UNITS_UTC = f"{TIME_UNITS} UTC"
FILL_VALUE = np.float32(-9999.0)
_ZLIB_LEVEL = 4


def method_reference(method: str) -> str:
    """Citation for ``method``: its spec's (`model.methods.specs`); an unregistered method
    still cites the pre-processing paper."""
    try:
        return get_spec(method).reference
    except ValueError:
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
    coords: dict[str, Any] = {
        "time": ("time", valid_s, time_attrs),
        "forecast_period": ("time", lead_min, period_attrs),
        "forecast_reference_time": ((), issue_s, issue_attrs),
    }
    if forecast.georef is None:
        row_attrs = {"long_name": "grid row, 0 = first row of the normalised grid", "units": "1"}
        col_attrs = {
            "long_name": "grid column, 0 = first column of the normalised grid",
            "units": "1",
        }
        coords["y"] = ("y", np.arange(ny, dtype=np.int32), row_attrs)
        coords["x"] = ("x", np.arange(nx, dtype=np.int32), col_attrs)
        return coords
    return {**coords, **geo_coords(forecast.georef)}


def geo_coords(georef: GridGeoref) -> dict[str, Any]:
    """Projection x/y (m), 2-D lat/lon and the grid-mapping variable of a georeferenced grid."""
    from pyproj import CRS

    lon, lat = georef.lonlat()
    crs = CRS.from_wkt(georef.crs_wkt)
    mapping = {k: v for k, v in crs.to_cf().items() if v is not None}
    if mapping.get("grid_mapping_name") == "polar_stereographic":
        # CF requires the pole it is centred on; pyproj's to_cf leaves it out
        mapping.setdefault("latitude_of_projection_origin", _polar_origin(crs))
    mapping["crs_wkt"] = georef.crs_wkt
    return {
        "y": ("y", georef.y_m(), _axis_attrs("y", "Y")),
        "x": ("x", georef.x_m(), _axis_attrs("x", "X")),
        "lat": (("y", "x"), lat, _lonlat_attrs("latitude", "degrees_north")),
        "lon": (("y", "x"), lon, _lonlat_attrs("longitude", "degrees_east")),
        "crs": ((), np.int32(0), mapping),
    }


def _polar_origin(crs: object) -> float:
    """+90 or -90: the pole a polar stereographic projection is centred on."""
    from pyproj import CRS

    assert isinstance(crs, CRS)
    operation = crs.coordinate_operation
    parameters = {p.name.lower(): float(p.value) for p in operation.params} if operation else {}
    origin = parameters.get("latitude of natural origin")
    if origin is None:
        origin = parameters.get("latitude of standard parallel", 90.0)
    return 90.0 if origin >= 0 else -90.0


def _lonlat_attrs(name: str, units: str) -> dict[str, str]:
    return {"standard_name": name, "long_name": f"{name} of the cell centres", "units": units}


def _axis_attrs(name: str, axis: str) -> dict[str, str]:
    return {
        "standard_name": f"projection_{name}_coordinate",
        "long_name": f"{name} of the cell centres in the site's projection",
        "units": "m",
        "axis": axis,
    }


def _global_attrs(
    forecast: Forecast, written_at: datetime, identity: ProductIdentity
) -> dict[str, str | float]:
    c = forecast.conversion
    return {
        "Conventions": "CF-1.8, ACDD-1.3",
        "title": f"{forecast.method} precipitation nowcast for radar site {forecast.site_id}",
        "institution": identity.institution,
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
        **_discovery_attrs(forecast, identity),
    }


def _discovery_attrs(forecast: Forecast, identity: ProductIdentity) -> dict[str, str | float]:
    """ACDD-1.3 attributes: what, who, where and when, for catalogues and search."""
    attrs: dict[str, str | float] = {
        "summary": (
            f"Radar precipitation nowcast of site {forecast.site_id}: rain rate for "
            f"{forecast.n_leads} leads every {forecast.cadence_min:g} min from the issue "
            f"time, made by the {forecast.method} method from the newest radar frames."
        ),
        "keywords": "precipitation, rain rate, nowcasting, weather radar, ConvLSTM",
        "license": identity.license,
        "creator_name": identity.institution,
        "creator_type": "institution",
        "acknowledgement": (
            "Radar data from the site's operator; optical flow and S-PROG by pysteps."
        ),
        "publisher_name": identity.institution,
        "publisher_type": "institution",
        "product_version": forecast.model_version,
        "processing_level": "forecast",
        "project": "nowcast: radar precipitation nowcasting",
        "cdm_data_type": "Grid",
        "id": f"{forecast.site_id}-{forecast.method}-{forecast.issue_time:%Y%m%dT%H%M%SZ}",
        "naming_authority": "nowcast",
        "date_created": _utc_text(forecast.created_at),
        "date_issued": _utc_text(forecast.created_at),
        "time_coverage_start": _utc_text(forecast.valid_times[0]),
        "time_coverage_end": _utc_text(forecast.valid_times[-1]),
        "time_coverage_resolution": f"PT{forecast.cadence_min:g}M",
        "time_coverage_duration": f"PT{forecast.cadence_min * (forecast.n_leads - 1):g}M",
    }
    if identity.url:
        attrs["creator_url"] = attrs["publisher_url"] = identity.url
    if identity.contact_email:
        attrs["creator_email"] = attrs["publisher_email"] = identity.contact_email
    return attrs


def _geospatial_attrs(lon: np.ndarray, lat: np.ndarray) -> dict[str, str | float]:
    """ACDD bounding box of the cell centres, as the ``lat``/``lon`` variables hold them."""
    lon_min, lat_min = float(lon.min()), float(lat.min())
    lon_max, lat_max = float(lon.max()), float(lat.max())
    return {
        "geospatial_lat_min": lat_min,
        "geospatial_lat_max": lat_max,
        "geospatial_lon_min": lon_min,
        "geospatial_lon_max": lon_max,
        "geospatial_lat_units": "degrees_north",
        "geospatial_lon_units": "degrees_east",
        "geospatial_bounds": (
            f"POLYGON (({lon_min} {lat_min}, {lon_max} {lat_min}, {lon_max} {lat_max}, "
            f"{lon_min} {lat_max}, {lon_min} {lat_min}))"
        ),
        "geospatial_bounds_crs": "EPSG:4326",
    }


def forecast_dataset(
    forecast: Forecast,
    written_at: datetime | None = None,
    identity: ProductIdentity | None = None,
) -> xr.Dataset:
    """The forecast as an xarray Dataset with CF attributes (layout in the module docstring).

    ``written_at``: the writing time stamped in ``history`` (default: now, UTC);
    ``identity``: who issues it (default: `ProductIdentity()`, no URL, no e-mail).
    """
    attrs = {
        "standard_name": "rainfall_rate",
        "long_name": "forecast rain rate",
        "units": "mm h-1",
        "cell_methods": "time: point",
        "coordinates": "forecast_period forecast_reference_time",
        "coverage_content_type": "modelResult",
    }
    if forecast.georef is not None:
        attrs["grid_mapping"] = "crs"
        attrs["coordinates"] += " lat lon"
    rain = xr.Variable(("time", "y", "x"), forecast.rain_mmh().astype(np.float32), attrs)
    coords = _coords(forecast)
    crs = coords.pop("crs", None)
    ds = xr.Dataset({"rainfall_rate": rain}, coords=coords)
    if crs is not None:
        ds["crs"] = xr.Variable(crs[0], crs[1], crs[2])
    written = datetime.now(UTC) if written_at is None else written_at
    ds.attrs = _global_attrs(forecast, written, identity or ProductIdentity())
    if "lat" in ds.coords:  # georeferenced
        ds.attrs.update(_geospatial_attrs(ds["lon"].values, ds["lat"].values))
    return ds


def forecast_to_netcdf(forecast: Forecast, identity: ProductIdentity | None = None) -> bytes:
    """The bytes of a CF-1.8 NetCDF4 (HDF5) file of the forecast, built in memory."""
    return dataset_to_netcdf(forecast_dataset(forecast, identity=identity))


def dataset_to_netcdf(ds: xr.Dataset, extra: dict[str, dict[str, Any]] | None = None) -> bytes:
    """NetCDF4 bytes of a forecast dataset: coordinates without ``_FillValue`` (they have no
    missing values), ``rainfall_rate`` and the variables of ``extra`` (their encodings)
    zlib-compressed with NaN as ``_FillValue``."""
    encoding: dict[str, dict[str, Any]] = {str(name): {"_FillValue": None} for name in ds.coords}
    for name, options in {"rainfall_rate": {"dtype": "float32"}, **(extra or {})}.items():
        encoding[name] = {
            "_FillValue": FILL_VALUE,
            "zlib": True,
            "complevel": _ZLIB_LEVEL,
            **options,
        }
    with HDF5_LOCK:  # HDF5 is not thread-safe; the API renders in worker threads
        return bytes(ds.to_netcdf(engine="netcdf4", format="NETCDF4", encoding=encoding))
