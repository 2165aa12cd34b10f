"""The HTTP API over real HTTP (uvicorn on loopback), a real Redis and a real small ConvLSTM."""

from __future__ import annotations

from datetime import timedelta

import httpx
import numpy as np
import pytest
import xarray as xr

from ingest.ingestor import Ingestor
from service.api.app import create_app
from service.inference import InferenceWorker
from service.methods_runner import MethodRunner
from tests.service.helpers import API_KEY, FEED_START
from tests.service.live_server import serving

SITE = "synth-01"


@pytest.fixture(scope="module")
def runner(small_checkpoint, tmp_path_factory):
    from tests.service.helpers import service_settings

    return MethodRunner(service_settings(tmp_path_factory.mktemp("r"), small_checkpoint))


@pytest.fixture
def service(settings, redis_conn, runner):
    """(base_url, worker): the API served for real, and an inference worker to drive."""
    worker = InferenceWorker(settings, redis_conn, runner, consumer="api-test")
    with serving(create_app(settings, redis_conn)) as base_url:
        yield base_url, worker


def _drain(worker):
    while worker.process_once() > 0:
        pass


def _ingest(settings, redis_conn, paths):
    ingestor = Ingestor(settings, redis_conn)
    for path in paths:
        assert ingestor.ingest_bytes(path.read_bytes(), str(path)).outcome == "accepted"


def _push(base_url, path, key=API_KEY, site=SITE):
    headers = {"X-API-Key": key} if key else {}
    return httpx.post(
        f"{base_url}/v1/sites/{site}/frames",
        content=path.read_bytes(),
        headers={**headers, "Content-Type": "application/x-netcdf"},
    )


def test_push_frames_see_a_forecast_then_verification_counts_change(service, settings, feed):
    base_url, worker = service
    for path in feed[:5]:
        response = _push(base_url, path)
        assert response.status_code == 201, response.text
        assert response.json()["site"] == SITE
    _drain(worker)

    latest = httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/latest", params={"stride": 2})
    assert latest.status_code == 200, latest.text
    body = latest.json()
    assert body["issue_time"] == "2026-03-01T12:24:00Z"
    assert body["method"] == "convlstm" and body["units"] == "mm h-1"
    assert body["lead_minutes"] == [6.0 * k for k in range(1, 16)]
    assert body["shape"] == [15, 16, 16]
    frames = np.asarray(body["frames"])
    assert frames.shape == (15, 16, 16) and (frames >= 0).all()
    assert body["max_rain_mmh"][0] >= frames[0].max() - 1e-3

    def verified(method):
        scores = httpx.get(f"{base_url}/v1/verification", params={"site": SITE}).json()
        return scores["methods"][method]["n_cells"]

    assert verified("convlstm") == [0] * 15
    assert _push(base_url, feed[5]).status_code == 201
    _drain(worker)
    assert verified("convlstm") == [32 * 32] + [0] * 14
    scores = httpx.get(f"{base_url}/v1/verification", params={"site": SITE}).json()
    assert set(scores["methods"]) == {
        "convlstm",
        "extrapolation",
        "extrapolation-inflow",
        "sprog",
        "steps",
        "persistence",
    }
    assert scores["lead_minutes"][0] == 6.0
    persistence = scores["methods"]["persistence"]
    csi = persistence["csi"]["0.5"][0]
    hits = persistence["hits"]["0.5"][0]
    misses, false_alarms = persistence["misses"]["0.5"][0], persistence["false_alarms"]["0.5"][0]
    if hits + misses + false_alarms:
        assert csi == pytest.approx(hits / (hits + misses + false_alarms))
    else:
        assert csi is None
    assert persistence["csi"]["0.5"][1] is None  # lead 2 not verified yet: undefined, not 0

    # a re-delivered frame is refused and does not count twice
    assert _push(base_url, feed[5]).status_code == 409
    _drain(worker)
    assert verified("convlstm") == [32 * 32] + [0] * 14

    # the time range selects hourly buckets by observation time
    later = httpx.get(
        f"{base_url}/v1/verification",
        params={"site": SITE, "since": (FEED_START + timedelta(hours=2)).isoformat()},
    ).json()
    assert later["methods"]["convlstm"]["n_cells"] == [0] * 15


def test_forecast_formats_point_and_past_issue(service, settings, redis_conn, feed, tmp_path):
    base_url, worker = service
    _ingest(settings, redis_conn, feed[:7])
    _drain(worker)
    url = f"{base_url}/v1/sites/{SITE}/nowcast/latest"

    netcdf = httpx.get(url, headers={"Accept": "application/x-netcdf"})
    assert netcdf.status_code == 200
    assert netcdf.headers["content-type"] == "application/x-netcdf"
    saved = tmp_path / "latest.nc"
    saved.write_bytes(netcdf.content)
    with xr.open_dataset(saved, engine="netcdf4") as ds:
        rain = ds["rainfall_rate"].values
    as_json = np.asarray(httpx.get(url).json()["frames"])
    np.testing.assert_allclose(rain, as_json, atol=1e-3)

    png = httpx.get(url, params={"format": "png", "method": "extrapolation"})
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    gif = httpx.get(url, headers={"Accept": "image/gif"})
    assert gif.headers["content-type"] == "image/gif" and gif.content[:6] == b"GIF89a"

    point = httpx.get(f"{url}/point", params={"row": 10, "col": 20}).json()
    assert len(point["rain_mmh"]) == 15
    np.testing.assert_allclose(point["rain_mmh"], as_json[:, 10, 20], atol=1e-3)

    issue = "2026-03-01T12:30:00Z"
    past = httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/{issue}", params={"frames": "false"})
    assert past.status_code == 200 and past.json()["frames"] is None
    assert past.json()["issue_time"] == issue

    observed = httpx.get(f"{base_url}/v1/sites/{SITE}/frames/latest", params={"n": 3}).json()
    assert observed["valid_times"][-1] == "2026-03-01T12:36:00Z"

    sites = httpx.get(f"{base_url}/v1/sites").json()
    assert [s["id"] for s in sites] == [SITE]
    assert sites[0]["frames"] == 7 and sites[0]["model_version"].startswith("convlstm-")
    assert sites[0]["mask_version"] is None and sites[0]["gaps"] == []


def test_errors_are_json_with_a_clear_message(
    service, settings, redis_conn, feed, tmp_path, caplog
):
    caplog.set_level("DEBUG")
    base_url, worker = service
    _ingest(settings, redis_conn, feed[:3])
    _drain(worker)

    def error(response, status):
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        return response.json()["detail"]

    assert "unknown site" in error(httpx.get(f"{base_url}/v1/sites/nowhere/nowcast/latest"), 404)
    assert "warming up" in error(httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/latest"), 404)
    error(httpx.get(f"{base_url}/v1/sites/BAD..ID!/nowcast/latest"), 422)
    assert "unknown method" in error(
        httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/latest", params={"method": "magic"}), 422
    )
    long_method = error(  # issue 33, finding 4: 10,000 characters were echoed whole
        httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/latest", params={"method": "m" * 10_000}),
        422,
    )
    assert "method" in long_method and len(long_method) < 300
    error(httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/latest", params={"stride": 0}), 422)
    error(httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/latest", params={"format": "xls"}), 422)
    error(httpx.get(f"{base_url}/v1/verification", params={"since": "yesterday"}), 422)
    assert "not found" not in error(
        httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/2020-01-01T00:00:00Z"), 404
    )

    assert "missing" in error(_push(base_url, feed[3], key=None), 401)
    assert "invalid" in error(_push(base_url, feed[3], key="wrong"), 401)
    assert API_KEY not in _push(base_url, feed[3], key="wrong").text

    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"not a netcdf file" * 10)
    assert "unreadable" in error(_push(base_url, garbage), 422)
    assert any(settings.quarantine_path.rglob("*"))  # kept, with its reason

    assert _push(base_url, feed[3]).status_code == 201
    assert API_KEY not in caplog.text and "wrong" not in caplog.text  # keys never logged

    small = settings.model_copy(update={"max_frame_bytes": 2048})
    with serving(create_app(small, redis_conn)) as small_url:
        assert "limit" in error(_push(small_url, feed[3]), 413)


def test_health_readiness_and_metrics(service, settings, redis_conn, feed):
    base_url, worker = service
    assert httpx.get(f"{base_url}/healthz").json() == {"status": "ok"}
    not_ready = httpx.get(f"{base_url}/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"] == {
        "redis": True,
        "model_loaded": False,
        "window_fresh": False,
    }

    _ingest(settings, redis_conn, feed[:6])
    worker.heartbeat()
    _drain(worker)
    ready = httpx.get(f"{base_url}/readyz")
    assert ready.status_code == 200, ready.text

    httpx.get(f"{base_url}/v1/sites")
    text = httpx.get(f"{base_url}/metrics").text
    for name in (
        "nowcast_frames_accepted_total",
        'nowcast_forecasts_issued_total{method="convlstm"} 2.0',
        "nowcast_ingest_lag_seconds",
        "nowcast_http_request_duration_seconds_bucket",
        "nowcast_inference_duration_seconds_bucket",
        'nowcast_verification_cells{lead_step="1",method="persistence",outcome="hit",'
        'threshold_mmh="0.5"}',
        'nowcast_site_verification_cells{method="persistence",outcome="hit",site="synth-01",'
        'threshold_mmh="0.5"}',
    ):
        assert name in text, name


def test_a_site_serves_its_default_method_when_a_request_names_none(
    settings, redis_conn, runner, feed, tmp_path
):
    """NOWCAST_SITES' ``default_method`` (e.g. sprog for a 15-minute composite): forecast
    requests without method= get it for that site; method= still picks any method; a default
    the worker does not run is refused at start-up."""
    from core.settings import SiteConfig
    from tests.service.helpers import service_settings

    site_default = service_settings(
        tmp_path / "var",
        settings.checkpoints["convlstm"],
        sites={SITE: SiteConfig(default_method="extrapolation")},
    )
    worker = InferenceWorker(site_default, redis_conn, runner, consumer="site-default")
    _ingest(site_default, redis_conn, feed[:6])
    _drain(worker)
    with serving(create_app(site_default, redis_conn)) as base_url:
        url = f"{base_url}/v1/sites/{SITE}/nowcast/latest"
        assert httpx.get(url, params={"frames": "false"}).json()["method"] == "extrapolation"
        chosen = httpx.get(url, params={"frames": "false", "method": "convlstm"}).json()
        assert chosen["method"] == "convlstm"
        by_default = np.asarray(
            httpx.get(f"{url}/point", params={"row": 3, "col": 4}).json()["rain_mmh"]
        )
        extrapolated = httpx.get(
            f"{url}/point", params={"row": 3, "col": 4, "method": "extrapolation"}
        ).json()["rain_mmh"]
        np.testing.assert_array_equal(by_default, extrapolated)
    with serving(create_app(settings, redis_conn)) as base_url:  # no site default: convlstm
        latest = httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/latest", params={"frames": "false"})
        assert latest.json()["method"] == "convlstm"

    with pytest.raises(ValueError, match="defaults to method 'sprog', which the worker does not"):
        service_settings(
            tmp_path / "other",
            settings.checkpoints["convlstm"],
            methods=("convlstm", "extrapolation"),
            sites={SITE: SiteConfig(default_method="sprog")},
        )
