"""Builders for the publishing tests: settings with tiny back-off, stored forecasts."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import redis

from core import keys
from service.forecast import Forecast, RainConversion
from service.forecast_store import ForecastStore
from service.publish.scheduler import Publisher
from service.publish.subscribers import build_subscribers
from service.settings import Settings

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()  # Standard Webhooks form
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
ISSUE_START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONVERSION = RainConversion(-10.0, 70.0, 200.0, 1.6)


def webhook(url: str, name: str = "hook", **extra: object) -> dict[str, object]:
    return {"name": name, "kind": "webhook", "url": url, "secret": SECRET, **extra}


def publish_settings(
    data_dir: Path, subscribers: list[dict[str, object]], **over: object
) -> Settings:
    """Fast retries (10 ms back-off), a short HTTP timeout, the given subscribers."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "subscribers": subscribers,
        "publish_max_attempts": 4,
        "publish_backoff_s": 0.01,
        "publish_backoff_max_s": 0.05,
        "publish_timeout_s": 0.3,
        "publish_lock_ttl_s": 5,
        "public_base_url": "https://nowcast.example.org",
        "poll_interval_s": 0.05,
    }
    values.update(over)
    return Settings(**values)  # type: ignore[arg-type]


def publisher(settings: Settings, connection: redis.Redis, consumer: str) -> Publisher:
    import time

    return Publisher(settings, connection, build_subscribers(settings, time.time), consumer)


def forecast_grey(seed: int, shape: tuple[int, int, int] = (15, 32, 32)) -> np.ndarray:
    """A rain blob growing with lead, grey in [0, 1]: (leads, H, W) float32."""
    n_leads, rows, cols = shape
    r, c = np.mgrid[0:rows, 0:cols]
    centre = 10 + seed % 7
    blob = np.exp(-((r - centre) ** 2 + (c - 16) ** 2) / 30.0)
    grey = np.stack([blob * (0.45 + 0.02 * k) for k in range(n_leads)])
    return grey.astype(np.float32)


def store_forecast(
    connection: redis.Redis, site_id: str, issue_time: datetime, seed: int = 0
) -> Forecast:
    """Store one convlstm forecast (announced on the forecast events stream) and the site."""
    forecast = Forecast(
        site_id=site_id,
        method="convlstm",
        issue_time=issue_time,
        cadence_min=6.0,
        grey=forecast_grey(seed),
        model_version="convlstm-test",
        norm_version="n1-test",
        conversion=CONVERSION,
        created_at=issue_time + timedelta(seconds=40),
    )
    assert ForecastStore(connection, 3600).store_issue([forecast])
    connection.sadd(keys.SITES, site_id)
    return forecast


def issue(step: int) -> datetime:
    return ISSUE_START + timedelta(minutes=6 * step)
