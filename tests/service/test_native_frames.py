"""The radar's own frame served beside the network's input (issue 30, its first part): for
every radar in ../shared, what the API serves for a valid time is the radar's rain rate on its
own grid, peaks included, with "no radar" kept apart from "no rain"."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import netCDF4
import numpy as np
import pytest

from ingest.cf_writer import write_cf_frame
from ingest.ingestor import Ingestor
from ingest.native import NativeFrame, pack_native, unpack_native
from ingest.reader import frame_files, read_radar_file
from service.api.app import create_app
from service.formats.native import block_max
from tests.ingest.helpers import small_settings
from tests.service.live_server import serving


def test_packing_keeps_rain_to_a_hundredth_and_nodata_apart_from_no_rain():
    rain = np.array([[0.0, 0.004, 39.23], [np.nan, 299.99, 1.5]], dtype=np.float32)
    frame = NativeFrame("s-1", datetime(2026, 1, 1, tzinfo=UTC), rain)
    back = unpack_native(pack_native(frame))
    assert back.site_id == "s-1" and back.valid_time == frame.valid_time
    np.testing.assert_allclose(back.rain_mmh, rain, atol=0.005)
    assert np.isnan(back.rain_mmh[1, 0]) and back.rain_mmh[0, 0] == 0.0
    with pytest.raises(ValueError, match="malformed native frame"):
        unpack_native(b"NWN1" + b"\xff" * 40)


def test_block_maxima_keep_the_peak_and_unobserved_blocks_null():
    rain = np.zeros((5, 5), dtype=np.float32)
    rain[4, 4] = 12.0
    rain[:2, :2] = np.nan
    coarse = block_max(rain, 2)
    assert coarse.shape == (3, 3) and coarse[2, 2] == 12.0 and np.isnan(coarse[0, 0])
    assert coarse[0, 1] == 0.0


def _first_frames(root: Path) -> list[Path]:
    """The first frame of each radar folder (each network) under ``root``."""
    folders = sorted({p.parent for p in frame_files(root)})
    return [frame_files(folder, recursive=False)[0] for folder in folders]


@pytest.fixture
def app(tmp_path, redis_conn):
    settings = small_settings(tmp_path / "data", crop_cells=330, target_cells=100,
                              disk_radius_cells=10, window_frames=40)  # fmt: skip
    return settings, create_app(settings, redis_conn)


def _check_radar(path: Path, ingestor: Ingestor, base: str) -> None:
    field = read_radar_file(path, None, (200.0, 1.6))
    result = ingestor.ingest_bytes(path.read_bytes(), path.name)
    assert result.outcome == "accepted", result
    expected = ingestor.native_frame(field).rain_mmh
    when = field.valid_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    url = f"{base}/v1/sites/{field.site_id}/frames/native"
    body = httpx.get(url, params={"valid_time": when}).json()
    assert body["shape"] == list(field.dbz.shape), path  # the whole domain, its own grid
    peak = float(np.nanmax(expected))
    assert body["max_rain_mmh"] == pytest.approx(peak, abs=0.01), path  # peaks included
    assert body["covered_fraction"] == pytest.approx(np.isfinite(expected).mean(), abs=1e-6)
    netcdf = httpx.get(url, params={"valid_time": when, "format": "netcdf"})
    assert netcdf.headers["content-type"] == "application/x-netcdf"
    with netCDF4.Dataset("native.nc", memory=netcdf.content) as nc:
        served = np.ma.filled(nc["rainfall_rate"][0].astype(np.float32), np.nan)
        assert nc["rainfall_rate"].units == "mm h-1"
    assert np.array_equal(np.isnan(served), np.isnan(expected)), path  # no radar != no rain
    seen = np.isfinite(expected)
    np.testing.assert_allclose(served[seen], expected[seen], atol=0.0051)  # within packing


def test_every_shared_radar_is_served_on_its_own_grid(app, redis_conn, shared_radar, shared_odim):
    settings, api = app
    ingestor = Ingestor(settings, redis_conn)
    with serving(api) as base:
        for path in [*_first_frames(shared_radar), *_first_frames(shared_odim)]:
            _check_radar(path, ingestor, base)


def test_a_peak_the_window_smooths_away_is_served(app, redis_conn, tmp_path):
    """The network's input smooths a 39 mm/h cell away; the radar's frame keeps it."""
    settings, api = app
    rain = np.zeros((400, 400), dtype=np.float32)
    rain[200:203, 200:203] = 39.0
    rain[:, :20] = np.nan  # beyond the radar's range
    path = tmp_path / "peak.nc"
    write_cf_frame(path, rain, datetime(2026, 1, 1, tzinfo=UTC), "peak-1", "rain_rate")
    ingestor = Ingestor(settings, redis_conn)
    assert ingestor.ingest_bytes(path.read_bytes(), "peak.nc").outcome == "accepted"
    (window,) = ingestor.window.frames("peak-1")
    assert float(window.grey.max()) < (10 * np.log10(200 * 39.0**1.6) + 10) / 80  # smoothed
    with serving(api) as base:
        body = httpx.get(f"{base}/v1/sites/peak-1/frames/native").json()
        missing = httpx.get(f"{base}/v1/sites/peak-1/frames/native",
                            params={"valid_time": "2026-01-02T00:00:00Z"})  # fmt: skip
    assert body["max_rain_mmh"] == pytest.approx(39.0, abs=0.01)
    assert body["covered_fraction"] == pytest.approx(380 / 400)
    assert body["frame"][0][0] is None and body["block_cells"] == 2
    assert missing.status_code == 404


def test_the_native_frames_are_the_windows_valid_times(tmp_path, redis_conn):
    """Kept for the window's times only: a frame the window drops or refuses leaves none."""
    from core import keys
    from ingest.cf_writer import write_synthetic_feed
    from ingest.window import WindowStore

    settings = small_settings(tmp_path / "data", window_frames=20)
    ingestor = Ingestor(settings, redis_conn)
    for path in write_synthetic_feed(tmp_path / "feed", 23, site_id="n-1", shape=(96, 96)):
        assert ingestor.ingest_bytes(path.read_bytes(), path.name).outcome == "accepted"
    window = WindowStore.from_settings(redis_conn, settings)
    held = {int(k) for k in redis_conn.hkeys(keys.native_frames("n-1"))}
    assert held == set(window.epochs("n-1")) and len(held) == 20
