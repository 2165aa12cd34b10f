"""What the API's routes share: settings, Redis stores, and a cache of rendered forecasts."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import redis
from fastapi import HTTPException, Request

from core import keys
from core.georef import GridGeoref
from ingest.status import site_georef, site_statuses
from ingest.window import WindowStore
from model.verification.scores import THRESHOLDS_MMH
from service.forecast import Forecast, RainConversion
from service.forecast_store import ForecastStore
from service.formats.identity import ProductIdentity
from service.settings import Settings
from service.status_store import StatusStore
from service.verification_store import VerificationStore

DEFAULT_METHOD = "convlstm"
"""The method a forecast request gets when neither it nor its site's ``default_method`` names
one."""

RENDER_CACHE_ENTRIES = 256
FORMAT_MEDIA_TYPES = {
    "json": "application/json",
    "netcdf": "application/x-netcdf",
    "png": "image/png",
    "gif": "image/gif",
    "geojson": "application/geo+json",
    "geotiff": "image/tiff; application=geotiff; profile=cloud-optimized",
}
FORMAT_SUFFIXES = {
    "netcdf": "nc",
    "png": "png",
    "gif": "gif",
    "geojson": "geojson",
    "geotiff": "tif",
}


@dataclass
class ApiContext:
    """Built once per app; routes reach it through ``request.app.state.ctx``."""

    settings: Settings
    redis: redis.Redis
    forecasts: ForecastStore = field(init=False)
    verification: VerificationStore = field(init=False)
    window: WindowStore = field(init=False)

    def __post_init__(self) -> None:
        self.forecasts = ForecastStore(self.redis, self.settings.forecast_ttl_s)
        self.verification = VerificationStore(self.redis, self.settings.verification_ttl_s)
        self.window = WindowStore.from_settings(self.redis, self.settings)
        self.conversion = RainConversion.from_settings(self.settings)
        self.status = StatusStore(self.redis)
        # forecasts never change once stored: cache them and their renderings by key
        self.load_forecast = lru_cache(maxsize=RENDER_CACHE_ENTRIES)(self._load_forecast)
        self.render = lru_cache(maxsize=RENDER_CACHE_ENTRIES)(self._render)
        self.render_json = lru_cache(maxsize=RENDER_CACHE_ENTRIES)(self._render_json)
        self.render_probability = lru_cache(maxsize=RENDER_CACHE_ENTRIES)(self._render_probability)

    # -- sites -----------------------------------------------------------------------------
    def site_ids(self) -> list[str]:
        return self.window.sites()

    def cadence_min(self, site_id: str) -> float | None:
        """The site's configured cadence (minutes), else the one its window's spacing shows."""
        return self.window.cadence_min(site_id, self.settings.site(site_id).cadence_min)

    def require_site(self, site_id: str) -> None:
        if not self.redis.sismember(keys.SITES, site_id):
            raise HTTPException(404, f"unknown site {site_id!r}; GET /v1/sites lists them")

    def site_georef(self, site_id: str) -> GridGeoref | None:
        return site_georef(self.redis, site_id)

    def statuses(self) -> list[Any]:
        return site_statuses(self.redis, self.settings)

    # -- forecasts -------------------------------------------------------------------------
    def require_method(self, method: str | None, site_id: str | None = None) -> str:
        """``method`` (any case) if the service runs it, else 422; none given: ``site_id``'s
        ``default_method``, else ``DEFAULT_METHOD``."""
        if method is None:
            site = self.settings.site(site_id) if site_id is not None else None
            method = (site.default_method if site else None) or DEFAULT_METHOD
        name = method.lower()
        if name not in self.settings.methods:
            raise HTTPException(
                422, f"unknown method {method!r}; served: {', '.join(self.settings.methods)}"
            )
        return name

    def no_forecast_reason(self, site_id: str, method: str) -> str:
        """Why the site has no forecast of ``method``: the last refusal, or warming up."""
        refusal = self.status.get(site_id).refusal
        if refusal is not None:
            return (
                f"no {method} forecast for {site_id}: the newest issue time "
                f"{refusal.issue_time:%Y-%m-%dT%H:%M:%SZ} could not be forecast "
                f"({refusal.reason}) - {refusal.message}"
            )
        return f"no {method} forecast for {site_id} yet: warming up (waiting for 5 frames)"

    def forecast(self, site_id: str, method: str, issue_time: datetime | None) -> Forecast:
        """The latest forecast (``issue_time`` None) or a kept past one; 404 with a reason.

        One Redis round trip when the forecast is rendered already (the common case).
        """
        if issue_time is None:
            latest = self.forecasts.latest_issue_time(site_id, method)
            if latest is None:
                self.require_site(site_id)
                raise HTTPException(404, self.no_forecast_reason(site_id, method))
            issue_time = latest
        elif not self.forecasts.is_kept(site_id, method, issue_time):
            self.require_site(site_id)
            raise self._not_kept(site_id, method, issue_time)
        try:
            return self.load_forecast(site_id, method, int(issue_time.timestamp()))
        except KeyError:  # expired in between
            raise self._not_kept(site_id, method, issue_time) from None

    def _not_kept(self, site_id: str, method: str, issue_time: datetime) -> HTTPException:
        return HTTPException(
            404,
            f"no {method} forecast for {site_id} issued at "
            f"{issue_time.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} (never made, or expired "
            f"after {self.settings.forecast_ttl_s} s)",
        )

    def _load_forecast(self, site_id: str, method: str, issue_epoch: int) -> Forecast:
        """The stored forecast; KeyError when absent (so that absence is never cached)."""
        found = self.forecasts.get(site_id, method, datetime.fromtimestamp(issue_epoch, tz=UTC))
        if found is None:
            raise KeyError((site_id, method, issue_epoch))
        return found

    def _render(
        self, site_id: str, method: str, issue_epoch: int, fmt: str, lead: int | None = None
    ) -> bytes:
        """The forecast as NetCDF, PNG, GIF, GeoJSON or GeoTIFF (of all leads, or ``lead``)
        bytes (cached: forecasts never change). ValueError where the format needs a
        georeference the site has not."""
        forecast = self.load_forecast(site_id, method, issue_epoch)
        if fmt == "geojson":
            from service.formats.geojson import forecast_to_geojson

            return forecast_to_geojson(forecast)
        if fmt == "geotiff":
            from service.formats.geotiff import forecast_to_geotiff

            return forecast_to_geotiff(forecast, lead)
        if fmt == "netcdf":
            from service.formats.netcdf import forecast_to_netcdf

            return forecast_to_netcdf(forecast, ProductIdentity.from_settings(self.settings))
        if fmt == "png":
            from service.formats.png import forecast_strip_png

            return forecast_strip_png(forecast)
        if fmt == "gif":
            from service.formats.png import forecast_animation_gif

            return forecast_animation_gif(forecast)
        raise ValueError(f"no renderer for {fmt}")

    def _render_json(
        self, site_id: str, method: str, issue_epoch: int, stride: int, frames: bool
    ) -> bytes:
        """The forecast as the JSON body of `schemas.NowcastBody` (cached like `_render`)."""
        from service.api.schemas import NowcastBody

        forecast = self.load_forecast(site_id, method, issue_epoch)
        rain = forecast.rain_mmh()
        sampled = rain[:, ::stride, ::stride]
        body = NowcastBody(
            site=forecast.site_id,
            method=forecast.method,
            issue_time=forecast.issue_time,
            model_version=forecast.model_version,
            norm_version=forecast.norm_version,
            cadence_min=forecast.cadence_min,
            lead_minutes=forecast.lead_minutes,
            valid_times=forecast.valid_times,
            stride=stride,
            shape=list(sampled.shape),
            max_rain_mmh=[round(float(v), 3) for v in rain.reshape(rain.shape[0], -1).max(axis=1)],
            frames=np.round(sampled, 3).tolist() if frames else None,
        )
        return body.model_dump_json().encode()

    def _render_probability(
        self,
        site_id: str,
        method: str,
        issue_epoch: int,
        fmt: str,
        threshold_mmh: float | None,
        stride: int,
        frames: bool,
    ) -> bytes:
        """product=probability as JSON, NetCDF, PNG or GeoJSON (cached); ValueError for a
        deterministic method, a threshold it has not, or a format that needs one."""
        from service.api.schemas import ProbabilityBody
        from service.formats import probability as products

        forecast = self.load_forecast(site_id, method, issue_epoch)
        chosen = products.require_probability(forecast, threshold_mmh)
        if fmt in ("png", "geojson") and threshold_mmh is None:
            raise ValueError(f"format={fmt} of product=probability needs threshold= (mm/h)")
        if fmt == "netcdf":
            identity = ProductIdentity.from_settings(self.settings)
            return products.probability_to_netcdf(forecast, threshold_mmh, identity)
        if fmt == "png" and threshold_mmh is not None:
            return products.probability_strip_png(forecast, threshold_mmh)
        if fmt == "geojson" and threshold_mmh is not None:
            return products.probability_to_geojson(forecast, threshold_mmh)
        if fmt != "json":
            raise ValueError(
                f"product=probability comes as json, netcdf, png or geojson, not {fmt}"
            )
        assert forecast.probability is not None
        sampled = forecast.probability[:, chosen, ::stride, ::stride]
        body = ProbabilityBody(
            site=forecast.site_id,
            method=forecast.method,
            issue_time=forecast.issue_time,
            model_version=forecast.model_version,
            cadence_min=forecast.cadence_min,
            lead_minutes=forecast.lead_minutes,
            valid_times=forecast.valid_times,
            members=forecast.members,
            thresholds_mmh=[forecast.thresholds_mmh[j] for j in chosen],
            stride=stride,
            shape=list(sampled.shape),
            probability_percent=np.rint(sampled * 100).astype(int).tolist() if frames else None,
        )
        return body.model_dump_json().encode()

    # -- observed --------------------------------------------------------------------------
    def observed_mmh(self, site_id: str, count: int) -> tuple[list[datetime], np.ndarray]:
        frames = self.window.frames(site_id, count)
        if not frames:
            return [], np.zeros((0, 0, 0), dtype=np.float32)
        grey = np.stack([f.grey for f in frames])
        return [f.valid_time for f in frames], self.conversion.rain_mmh(grey)

    def thresholds(self) -> tuple[float, ...]:
        return THRESHOLDS_MMH

    # -- keys ------------------------------------------------------------------------------
    def check_api_key(self, request: Request) -> None:
        """401 unless the X-API-Key header matches a configured key (constant time)."""
        given = request.headers.get("x-api-key", "")
        if not given:
            raise HTTPException(401, "missing X-API-Key header", {"WWW-Authenticate": "ApiKey"})
        given_bytes = given.encode()
        matched = False
        for key in self.settings.api_keys:
            matched |= hmac.compare_digest(given_bytes, key.get_secret_value().encode())
        if not matched:
            raise HTTPException(401, "invalid API key", {"WWW-Authenticate": "ApiKey"})


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx
