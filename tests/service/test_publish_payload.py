"""The published summary (pure): maxima and areas per lead, links, names; back-off values."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from model.verification.scores import THRESHOLDS_MMH
from service.forecast import Forecast
from service.publish.delivery import RetryPolicy, backoff_delay_s
from service.publish.message import DeliveryJob
from service.publish.payload import (
    build_message,
    file_name,
    lead_statistics,
    nowcast_links,
    summary,
)
from tests.service.publish_helpers import CONVERSION, forecast_grey, issue


def _forecast() -> Forecast:
    return Forecast(
        site_id="synth-01",
        method="convlstm",
        issue_time=issue(4),
        cadence_min=6.0,
        grey=forecast_grey(3),
        model_version="convlstm-abc",
        norm_version="n1",
        conversion=CONVERSION,
        created_at=issue(4),
    )


def test_summary_gives_max_rain_and_area_above_each_threshold_per_lead():
    forecast = _forecast()
    rain = forecast.rain_mmh()
    body = summary(forecast, "hook:synth-01:20260301T122400Z", "https://nc.example.org/")
    assert body["site"] == "synth-01" and body["issue_time"] == "2026-03-01T12:24:00Z"
    assert body["delivery_id"] == "hook:synth-01:20260301T122400Z"
    assert body["thresholds_mmh"] == list(THRESHOLDS_MMH)
    assert body["grid"] == {
        "rows": 32,
        "cols": 32,
        "cells": 1024,
        "cell_size_km": None,
        "bbox": None,
    }
    assert "no known cell size" in body["grid_note"]
    assert len(body["leads"]) == 15
    for k, lead in enumerate(body["leads"]):
        assert lead["lead"] == k + 1 and lead["lead_min"] == 6.0 * (k + 1)
        assert lead["max_rain_mmh"] == pytest.approx(float(rain[k].max()), abs=1e-3)
        for t in THRESHOLDS_MMH:
            key = str(float(t))
            assert lead["cells_at_or_above"][key] == int((rain[k] >= t).sum())
            assert lead["area_fraction"][key] == pytest.approx((rain[k] >= t).mean(), abs=1e-6)
    assert body["leads"][0]["valid_time"] == "2026-03-01T12:30:00Z"
    # the blob grows with lead, so some area is above 0.5 mm/h and it does not shrink
    areas = [lead["area_fraction"]["0.5"] for lead in body["leads"]]
    assert areas[0] > 0 and areas == sorted(areas)
    json.dumps(body, allow_nan=False)  # valid JSON, no NaN


def test_links_point_at_the_api_routes_of_the_issue_time():
    links = nowcast_links("https://nc.example.org/", "melb-2", "convlstm", issue(4))
    base = "https://nc.example.org/v1/sites/melb-2/nowcast/2026-03-01T12:24:00Z"
    assert links == {
        "netcdf": f"{base}?format=netcdf&method=convlstm",
        "png": f"{base}?format=png&method=convlstm",
        "json": f"{base}?format=json&method=convlstm",
    }


def test_lead_statistics_leave_uncovered_cells_out():
    rain = np.full((2, 2, 2), np.nan, dtype=np.float32)
    rain[0] = [[0.0, 1.0], [3.0, np.nan]]
    stats = lead_statistics(rain, (0.5, 2.0))
    assert stats[0]["max_rain_mmh"] == 3.0
    assert stats[0]["cells_at_or_above"] == {"0.5": 2, "2.0": 1}
    assert stats[0]["area_fraction"] == {"0.5": 0.5, "2.0": 0.25}
    assert stats[1]["max_rain_mmh"] is None and stats[1]["cells_at_or_above"]["0.5"] == 0


def test_file_names_and_payload_kinds():
    assert (
        file_name("melb-2", "convlstm", issue(4), "nc")
        == "nowcast_melb-2_convlstm_20260301T1224Z.nc"
    )
    job = DeliveryJob("files", "synth-01", "convlstm", issue(4))
    assert job.delivery_id == "files:synth-01:20260301T122400Z"
    message = build_message(job, _forecast(), "netcdf", "http://x", lambda: b"CDF")
    assert (message.body, message.content_type, message.suffix) == (
        b"CDF",
        "application/x-netcdf",
        "nc",
    )
    with pytest.raises(ValueError, match=r"unknown payload 'csv'.*netcdf.*summary"):
        build_message(job, _forecast(), "csv", "http://x", lambda: b"")


def test_back_off_is_exponential_with_full_jitter_and_capped():
    policy = RetryPolicy(max_attempts=6, backoff_s=0.5, backoff_max_s=3.0)
    assert [backoff_delay_s(k, policy, lambda: 1.0) for k in range(1, 6)] == [0.5, 1, 2, 3, 3]
    assert backoff_delay_s(4, policy, lambda: 0.0) == 0.0
    rng = random.Random(1)
    draws = [backoff_delay_s(3, policy, rng.random) for _ in range(200)]
    assert 0 <= min(draws) < 0.3 and 1.7 < max(draws) <= 2.0  # spread over [0, 2]


def test_delivery_ids_name_the_issue_time_in_utc():
    melbourne = timezone(timedelta(hours=11))
    job = DeliveryJob("hook", "melb-2", "convlstm", datetime(2026, 3, 1, 23, 24, tzinfo=melbourne))
    assert job.delivery_id == "hook:melb-2:20260301T122400Z"


def test_a_georeferenced_summary_gives_areas_in_km2_a_bbox_and_map_links():
    from dataclasses import replace

    from pyproj import CRS

    from core.georef import GridGeoref

    forecast = _forecast()
    georef = GridGeoref(CRS.from_epsg(3035).to_wkt(), 4_000_000.0, 2000.0, 3_000_000.0, -2000.0,
                        nx=forecast.grey.shape[2], ny=forecast.grey.shape[1])  # fmt: skip
    body = summary(replace(forecast, georef=georef), "d-1", "https://nc.example.org")
    assert body["grid"]["cell_size_km"] == 2.0
    lon_min, lat_min, lon_max, lat_max = body["grid"]["bbox"]
    assert lon_min < lon_max and lat_min < lat_max
    lead = body["leads"][0]
    for key, cells in lead["cells_at_or_above"].items():
        assert lead["area_km2"][key] == pytest.approx(cells * 4.0)
    assert {"geojson", "geotiff"} <= set(body["links"])
    plain = summary(forecast, "d-2", "https://nc.example.org")
    assert plain["grid"]["bbox"] is None and "area_km2" not in plain["leads"][0]
    assert "geojson" not in plain["links"]
