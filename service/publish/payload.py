"""What a forecast becomes when published: a JSON summary, the CF-NetCDF, links, file names.

Pure functions of a `service.forecast.Forecast` (no Redis, no network). Areas are cell counts
and fractions of the normalised grid, and, for a georeferenced site, km2 (the cell area in the
site's projection, exact for an equal-area projection) with the grid's bounding box.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
from numpy.typing import NDArray

from model.verification.scores import THRESHOLDS_MMH, threshold_key
from service.forecast import Forecast
from service.publish.message import DeliveryJob, Message

SUMMARY_TYPE = "nowcast.summary"
SUMMARY_VERSION = 1
GRID_NOTE = (
    "normalised grid (resized centre crop of the radar grid) with no known cell size: "
    "areas are fractions of the grid's cells, not km2"
)
GEO_NOTE = (
    "normalised grid (resized centre crop of the radar grid) placed by the radar's projection: "
    "bbox is [lon_min, lat_min, lon_max, lat_max] in degrees; area_km2 in the projection's plane"
)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lead_statistics(
    rain_mmh: NDArray[np.floating],
    thresholds_mmh: Sequence[float] = THRESHOLDS_MMH,
    cell_area_km2: float | None = None,
) -> list[dict[str, Any]]:
    """Per lead of ``rain_mmh`` (n_leads, H, W) in mm/h: the largest rate (mm/h), and per
    threshold the cells with rate >= threshold, as a count, as a fraction of the grid and,
    given ``cell_area_km2``, as an area in km2.

    NaN cells (not covered) count in no area and in no maximum; an all-NaN lead has max None.
    """
    rain = np.asarray(rain_mmh, dtype=np.float64)
    n_cells = rain.shape[1] * rain.shape[2]
    out = []
    for lead in rain:
        covered = lead[np.isfinite(lead)]
        counts = {threshold_key(t): int((covered >= t).sum()) for t in thresholds_mmh}
        entry: dict[str, Any] = {
            "max_rain_mmh": round(float(covered.max()), 3) if covered.size else None,
            "cells_at_or_above": counts,
            "area_fraction": {k: round(n / n_cells, 6) for k, n in counts.items()},
        }
        if cell_area_km2 is not None:
            entry["area_km2"] = {k: round(n * cell_area_km2, 3) for k, n in counts.items()}
        out.append(entry)
    return out


PROBABILITY_LEVELS = (0.1, 0.5, 0.9)


def probability_areas(
    forecast: Forecast, cell_area_km2: float | None = None
) -> list[dict[str, dict[str, dict[str, float | int]]]]:
    """Per lead of a probabilistic forecast: threshold key -> probability level ("0.5") ->
    the cells where P(rain >= threshold) >= level, as ``cells``, ``area_fraction`` and, given
    ``cell_area_km2``, ``area_km2`` ("area with >= 50 % chance of >= 5 mm/h")."""
    assert forecast.probability is not None
    n_cells = forecast.probability.shape[2] * forecast.probability.shape[3]
    out = []
    for lead in forecast.probability:
        entry: dict[str, dict[str, dict[str, float | int]]] = {}
        for j, threshold in enumerate(forecast.thresholds_mmh):
            levels: dict[str, dict[str, float | int]] = {}
            for level in PROBABILITY_LEVELS:
                cells = int((lead[j] >= level - 1e-6).sum())
                area: dict[str, float | int] = {
                    "cells": cells,
                    "area_fraction": round(cells / n_cells, 6),
                }
                if cell_area_km2 is not None:
                    area["area_km2"] = round(cells * cell_area_km2, 3)
                levels[str(level)] = area
            entry[threshold_key(threshold)] = levels
        out.append(entry)
    return out


def nowcast_links(
    base_url: str, site_id: str, method: str, issue_time: datetime, georeferenced: bool = False
) -> dict[str, str]:
    """API URLs of the forecast as netcdf, png and json, and for a georeferenced site geojson
    and geotiff."""
    path = f"{base_url.rstrip('/')}/v1/sites/{quote(site_id)}/nowcast/{_iso(issue_time)}"
    return {
        fmt: f"{path}?{urlencode({'format': fmt, 'method': method})}"
        for fmt in ("netcdf", "png", "json", *(("geojson", "geotiff") if georeferenced else ()))
    }


def summary(forecast: Forecast, delivery_id: str, base_url: str) -> dict[str, Any]:
    """The JSON summary of a forecast (site, issue time, leads, maxima, areas, links)."""
    rain = forecast.rain_mmh()
    georef = forecast.georef
    cell_km2 = georef.cell_area_km2() if georef else None
    stats = lead_statistics(rain, cell_area_km2=cell_km2)
    leads = [
        {"lead": k + 1, "lead_min": minutes, "valid_time": _iso(valid), **stats[k]}
        for k, (minutes, valid) in enumerate(
            zip(forecast.lead_minutes, forecast.valid_times, strict=True)
        )
    ]
    links = nowcast_links(
        base_url, forecast.site_id, forecast.method, forecast.issue_time, georef is not None
    )
    probabilistic: dict[str, Any] = {}
    if forecast.probability is not None:
        links["probability_netcdf"] = f"{links['netcdf']}&product=probability"
        for lead, areas in zip(leads, probability_areas(forecast, cell_km2), strict=True):
            lead["probability_areas"] = areas
        probabilistic = {
            "ensemble_members": forecast.members,
            "probability_levels": list(PROBABILITY_LEVELS),
        }
    rows, cols = rain.shape[1:]
    return {
        "type": SUMMARY_TYPE,
        "schema_version": SUMMARY_VERSION,
        "delivery_id": delivery_id,
        "site": forecast.site_id,
        "method": forecast.method,
        "issue_time": _iso(forecast.issue_time),
        "model_version": forecast.model_version,
        "cadence_min": forecast.cadence_min,
        "units": {
            "rain_rate": "mm h-1",
            "area_fraction": "fraction of grid cells",
            "area_km2": "km2",
        },
        "grid": {
            "rows": rows,
            "cols": cols,
            "cells": rows * cols,
            "cell_size_km": round(abs(georef.dx_m) / 1000, 4) if georef else None,
            "bbox": [round(v, 5) for v in georef.bounds_lonlat()] if georef else None,
        },
        "grid_note": GEO_NOTE if georef else GRID_NOTE,
        "thresholds_mmh": list(THRESHOLDS_MMH),
        **probabilistic,
        "leads": leads,
        "links": links,
    }


def file_name(site_id: str, method: str, issue_time: datetime, suffix: str) -> str:
    """``nowcast_<site>_<method>_<YYYYmmddTHHMMZ>.<suffix>``, as the API names downloads."""
    return f"nowcast_{site_id}_{method}_{issue_time.astimezone(UTC):%Y%m%dT%H%MZ}.{suffix}"


def _summary_message(
    job: DeliveryJob, forecast: Forecast, base_url: str, _netcdf: Callable[[], bytes]
) -> Message:
    body = json.dumps(summary(forecast, job.delivery_id, base_url), separators=(",", ":"))
    return Message(job, body.encode(), "application/json", "json")


def _netcdf_message(
    job: DeliveryJob, _forecast: Forecast, _base_url: str, netcdf: Callable[[], bytes]
) -> Message:
    return Message(job, netcdf(), "application/x-netcdf", "nc")


_PAYLOADS: dict[str, Callable[[DeliveryJob, Forecast, str, Callable[[], bytes]], Message]] = {
    "summary": _summary_message,
    "netcdf": _netcdf_message,
}


def build_message(
    job: DeliveryJob,
    forecast: Forecast,
    payload: str,
    base_url: str,
    netcdf: Callable[[], bytes],
) -> Message:
    """The message of ``payload`` (summary or netcdf) for ``job``.

    ``netcdf`` returns the forecast's CF-NetCDF bytes (called only when needed, so that the
    caller can render once for every subscriber).
    """
    try:
        build = _PAYLOADS[payload]
    except KeyError:
        raise ValueError(f"unknown payload {payload!r}; valid: {sorted(_PAYLOADS)}") from None
    return build(job, forecast, base_url, netcdf)
