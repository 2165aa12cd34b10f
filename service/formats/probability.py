"""The probability product of a probabilistic forecast (an ensemble): probabilities of rain at or
above thresholds, per lead and cell, as CF-NetCDF, a PNG strip and GeoJSON areas.

CF-NetCDF (`probability_to_netcdf`): the forecast's file (`service.formats.netcdf`, whose
``rainfall_rate`` is the ensemble mean) plus

- ``threshold`` (threshold): the rain-rate thresholds, ``standard_name`` rainfall_rate,
  units mm h-1 - the coordinate that says what the probability is of;
- ``probability_of_rainfall_rate_above_threshold`` (threshold, time, y, x): float32 in [0, 1],
  units "1", ``relative_to_threshold`` "greater_than_or_equal_to", ``ensemble_members``; the
  threshold leads, as CF (section 2.4) asks of dimensions other than T, Z, Y and X.
CF 1.8 has no standard name for a probability of exceedance; this follows the practice of
operational post-processing (the Met Office's IMPROVER): the probability variable carries a
long name and units 1, and the threshold coordinate carries the quantity's standard name.
"""

from __future__ import annotations

import io
import json
from datetime import UTC
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from service.forecast import Forecast
from service.formats.identity import ProductIdentity

PROBABILITY_VARIABLE = "probability_of_rainfall_rate_above_threshold"
AREA_PROBABILITIES = (0.1, 0.5, 0.9)
"""The probability levels of the GeoJSON areas."""


def require_probability(forecast: Forecast, threshold_mmh: float | None) -> list[int]:
    """Indices of the forecast's thresholds asked for (all for None); ValueError when the
    forecast has no probabilities or not that threshold."""
    if forecast.probability is None:
        raise ValueError(f"{forecast.method} is not a probabilistic method: no probabilities")
    if threshold_mmh is None:
        return list(range(len(forecast.thresholds_mmh)))
    for j, value in enumerate(forecast.thresholds_mmh):
        if abs(value - threshold_mmh) < 1e-9:
            return [j]
    given = ", ".join(f"{t:g}" for t in forecast.thresholds_mmh)
    raise ValueError(f"threshold {threshold_mmh:g} mm/h is not one of the forecast's: {given}")


def probability_dataset(
    forecast: Forecast, threshold_mmh: float | None = None, identity: ProductIdentity | None = None
) -> xr.Dataset:
    """The forecast's dataset with the probabilities of ``threshold_mmh`` (None: all)."""
    from service.formats.netcdf import forecast_dataset

    chosen = require_probability(forecast, threshold_mmh)
    assert forecast.probability is not None
    ds = forecast_dataset(forecast, identity=identity)
    thresholds = np.asarray([forecast.thresholds_mmh[j] for j in chosen], dtype=np.float32)
    ds = ds.assign_coords(
        threshold=(
            "threshold",
            thresholds,
            {
                "standard_name": "rainfall_rate",
                "long_name": "rain-rate threshold of the probability",
                "units": "mm h-1",
            },
        )
    )
    attrs: dict[str, Any] = {
        "long_name": "probability of rain rate at or above the threshold",
        "units": "1",
        "relative_to_threshold": "greater_than_or_equal_to",
        "ensemble_members": np.int32(forecast.members or 0),
        "coverage_content_type": "modelResult",
    }
    for name in ("grid_mapping", "coordinates"):
        if name in ds["rainfall_rate"].attrs:
            attrs[name] = ds["rainfall_rate"].attrs[name]
    values = np.moveaxis(forecast.probability[:, chosen], 1, 0).astype(np.float32)
    ds[PROBABILITY_VARIABLE] = xr.Variable(("threshold", "time", "y", "x"), values, attrs)
    ds["rainfall_rate"].attrs["long_name"] = "forecast rain rate, ensemble mean"
    ds.attrs["title"] = (
        f"{forecast.method} probabilistic precipitation nowcast for radar site {forecast.site_id}"
    )
    ds.attrs["summary"] = (
        f"{ds.attrs['summary']} Probabilities of rain at or above "
        f"{', '.join(f'{t:g}' for t in thresholds)} mm/h from {forecast.members} members."
    )
    return ds


def probability_to_netcdf(
    forecast: Forecast, threshold_mmh: float | None = None, identity: ProductIdentity | None = None
) -> bytes:
    """CF-1.8 NetCDF4 bytes of `probability_dataset`."""
    from service.formats.netcdf import dataset_to_netcdf

    ds = probability_dataset(forecast, threshold_mmh, identity)
    return dataset_to_netcdf(ds, {PROBABILITY_VARIABLE: {"dtype": "float32"}})


def probability_rgb(probability: NDArray[np.floating]) -> NDArray[np.uint8]:
    """(H, W) probability in [0, 1] -> (H, W, 3) RGB: white below 5 %, then a sequential
    blue-purple scale in steps of 10 % (matplotlib's "BuPu", 10 levels)."""
    from service.formats.png import probability_colour_scale

    cmap, norm = probability_colour_scale()
    p = np.asarray(probability, dtype=np.float32)
    rgba = cmap(norm(np.where(p < 0.05, -1.0, p)), bytes=True)
    return np.ascontiguousarray(rgba[..., :3])


def probability_strip_png(forecast: Forecast, threshold_mmh: float) -> bytes:
    """PNG strip of the probability of rain >= ``threshold_mmh``, one panel per lead."""
    from service.formats.png import probability_strip

    (j,) = require_probability(forecast, threshold_mmh)
    assert forecast.probability is not None
    panels = [probability_rgb(forecast.probability[k, j]) for k in range(forecast.n_leads)]
    issued = forecast.issue_time.astimezone(UTC)
    title = (
        f"{forecast.site_id} - {forecast.method} ({forecast.members} members) - P(rain >= "
        f"{threshold_mmh:g} mm/h) - issued {issued:%Y-%m-%d %H:%M} UTC"
    )
    out = io.BytesIO()
    probability_strip(forecast, panels, title).savefig(out, format="png")
    return out.getvalue()


def probability_to_geojson(forecast: Forecast, threshold_mmh: float) -> bytes:
    """GeoJSON (RFC 7946) of the areas where P(rain >= ``threshold_mmh``) is at least 10, 50
    and 90 %, per lead, as lon/lat MultiPolygons traced like the rain areas
    (`service.formats.geojson.rain_area`), with their area in km2."""
    from service.formats.geojson import rain_area

    (j,) = require_probability(forecast, threshold_mmh)
    assert forecast.probability is not None
    if forecast.georef is None:
        raise ValueError(f"site {forecast.site_id} has no georeference: no GeoJSON")
    features = []
    for k, valid in enumerate(forecast.valid_times):
        for level in AREA_PROBABILITIES:
            mask = forecast.probability[k, j] >= level - 1e-6
            geometry, area_km2 = rain_area(mask, forecast.georef)
            properties = {
                "lead": k + 1,
                "lead_minutes": forecast.lead_minutes[k],
                "valid_time": valid.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "threshold_mmh": threshold_mmh,
                "probability_at_least": level,
                "area_km2": round(area_km2, 3),
            }
            features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    collection = {
        "type": "FeatureCollection",
        "name": f"{forecast.method} probability of rain >= {threshold_mmh:g} mm/h at "
        f"{forecast.site_id}",
        "issue_time": forecast.issue_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "method": forecast.method,
        "model_version": forecast.model_version,
        "features": features,
    }
    return json.dumps(collection, separators=(",", ":")).encode()
