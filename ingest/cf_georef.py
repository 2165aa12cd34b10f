"""The georeference of a CF-NetCDF frame: its ``grid_mapping`` and projection coordinates.

CF-1.8 section 5.6: the data variable names a grid-mapping variable whose attributes describe
the CRS (read with pyproj's ``CRS.from_cf``; ``crs_wkt`` where present), and its two
horizontal dimensions have coordinate variables with ``standard_name``
``projection_x_coordinate`` / ``projection_y_coordinate`` in m or km. A frame without them,
or with uneven spacing, has no georeference (None): it still works on grid indices.
"""

from __future__ import annotations

import logging

import netCDF4
import numpy as np

from core.georef import GridGeoref, regular_axis

log = logging.getLogger(__name__)

_METRES_PER_UNIT = {"m": 1.0, "metre": 1.0, "meter": 1.0, "metres": 1.0, "km": 1000.0}


def cf_georef(ds: netCDF4.Dataset, var: netCDF4.Variable) -> GridGeoref | None:
    """The grid geometry of ``var`` (.., y, x) in ``ds``, or None where the file gives none."""
    mapping_name = _attr(var, "grid_mapping")
    if not mapping_name or str(mapping_name) not in ds.variables:
        return None
    try:
        crs_wkt = _crs_wkt(ds.variables[str(mapping_name)])
    except Exception as exc:  # pyproj raises its own CRSError (and ValueError) on bad CF
        log.warning("grid mapping %s not understood (%s): no georeference", mapping_name, exc)
        return None
    y_dim, x_dim = var.dimensions[-2:]
    x = _axis_m(ds, x_dim, "projection_x_coordinate")
    y = _axis_m(ds, y_dim, "projection_y_coordinate")
    if x is None or y is None:
        return None
    return GridGeoref(crs_wkt, x[0], x[1], y[0], y[1], nx=len(ds.dimensions[x_dim]),
                      ny=len(ds.dimensions[y_dim]))  # fmt: skip


def _crs_wkt(mapping: netCDF4.Variable) -> str:
    from pyproj import CRS

    attrs = {key: mapping.getncattr(key) for key in mapping.ncattrs()}
    if attrs.get("crs_wkt"):
        return str(CRS.from_wkt(str(attrs["crs_wkt"])).to_wkt())
    cf = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in attrs.items()}
    return str(CRS.from_cf(cf).to_wkt())


def _axis_m(ds: netCDF4.Dataset, dim: str, standard_name: str) -> tuple[float, float] | None:
    """(first, step) in metres of the coordinate variable of ``dim``; None if unusable."""
    coord = ds.variables.get(dim)
    if coord is None or coord.ndim != 1 or _attr(coord, "standard_name") != standard_name:
        return None
    scale = _METRES_PER_UNIT.get(str(_attr(coord, "units") or "").strip().lower())
    if scale is None:
        return None
    values = np.ma.filled(coord[:].astype(np.float64), np.nan) * scale
    axis = regular_axis(values)
    if axis is None:
        log.warning("%s is not evenly spaced: no georeference", dim)
    return axis


def _attr(var: netCDF4.Variable, key: str) -> object:
    return var.getncattr(key) if key in var.ncattrs() else None
