"""A forecast's rain areas as GeoJSON (RFC 7946): where the rain rate reaches each threshold.

One feature per (lead, threshold): the (multi)polygon of the cells at or above the threshold,
traced by rasterio's ``features.shapes`` on the grid in the site's projection, simplified to
half a cell (the grid's resolution), then moved to longitude/latitude (WGS 84) with pyproj,
exterior rings counter-clockwise. Properties: ``lead`` (1-based), ``lead_minutes``,
``valid_time``, ``threshold_mmh`` and ``area_km2`` (in the projection's plane). A threshold
with no cell above it has an empty MultiPolygon. Only for a georeferenced forecast.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from core.georef import GridGeoref, to_lonlat
from service.forecast import Forecast

THRESHOLDS_MMH = (0.5, 2.0, 5.0, 10.0, 30.0)


def forecast_to_geojson(
    forecast: Forecast, thresholds_mmh: tuple[float, ...] = THRESHOLDS_MMH
) -> bytes:
    """The FeatureCollection of the forecast's rain areas, UTF-8 JSON bytes.

    Raises ValueError when the forecast has no georeference.
    """
    if forecast.georef is None:
        raise ValueError(f"site {forecast.site_id} has no georeference: no GeoJSON")
    rain = forecast.rain_mmh()
    features = []
    for lead, (minutes, valid) in enumerate(
        zip(forecast.lead_minutes, forecast.valid_times, strict=True), start=1
    ):
        for threshold in thresholds_mmh:
            geometry, area_km2 = rain_area(rain[lead - 1] >= threshold, forecast.georef)
            features.append(
                {
                    "type": "Feature",
                    "geometry": geometry,
                    "properties": {
                        "lead": lead,
                        "lead_minutes": minutes,
                        "valid_time": valid.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "threshold_mmh": threshold,
                        "area_km2": round(area_km2, 3),
                    },
                }
            )
    collection = {
        "type": "FeatureCollection",
        "name": f"{forecast.method} nowcast of {forecast.site_id}",
        "issue_time": forecast.issue_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "method": forecast.method,
        "model_version": forecast.model_version,
        "features": features,
    }
    return json.dumps(collection, separators=(",", ":")).encode()


def rain_area(mask: np.ndarray, georef: GridGeoref) -> tuple[dict[str, Any], float]:
    """(GeoJSON MultiPolygon in lon/lat, area in km2) of the True cells of ``mask`` (ny, nx)."""
    import shapely
    from rasterio import features
    from rasterio.transform import Affine
    from shapely.geometry import MultiPolygon, mapping, shape
    from shapely.geometry.polygon import orient
    from shapely.ops import unary_union

    cells = np.ascontiguousarray(mask, dtype=np.uint8)
    if not cells.any():
        return {"type": "MultiPolygon", "coordinates": []}, 0.0
    affine = Affine(*georef.transform())
    polygons = [
        shape(geometry)
        for geometry, value in features.shapes(cells, mask=cells.astype(bool), transform=affine)
        if value == 1
    ]
    merged = unary_union(polygons)
    area_km2 = merged.area / 1e6
    simplified = merged.simplify(min(abs(georef.dx_m), abs(georef.dy_m)) / 2)
    transformer = to_lonlat(georef.crs_wkt)
    lonlat = shapely.transform(
        simplified, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
    )
    parts = list(lonlat.geoms) if hasattr(lonlat, "geoms") else [lonlat]
    oriented = MultiPolygon([orient(p, sign=1.0) for p in parts if not p.is_empty])
    return mapping(oriented), area_km2
