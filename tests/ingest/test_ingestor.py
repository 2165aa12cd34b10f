"""Ingest of single frames: acceptance, archive, and every kind of bad input to quarantine."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from core import keys
from core.frame import RejectReason
from ingest.cf_writer import write_cf_frame, write_synthetic_feed
from ingest.ingestor import ArchiveUnavailable, Ingestor
from ingest.rebuild import rebuild_windows
from tests.ingest.helpers import SMALL_GRID, START, small_settings

SIX = timedelta(minutes=6)


@pytest.fixture
def feed(tmp_path) -> list[Path]:
    return write_synthetic_feed(tmp_path / "feed", 6, site_id="t-1", shape=SMALL_GRID)


def _window_snapshot(redis_conn, site="t-1"):
    return (
        redis_conn.zrange(keys.window_times(site), 0, -1, withscores=True),
        redis_conn.hgetall(keys.window_frames(site)),
    )


def _assert_quarantined(result, ingestor, reason: RejectReason, raw: bytes):
    assert result.outcome == "quarantined"
    assert result.reason is reason
    notes = list(ingestor.quarantine.root.glob("*/*.reason.json"))
    assert len(notes) == 1
    note = json.loads(notes[0].read_text())
    assert note["reason"] == reason.value and note["message"]
    kept = Path(str(notes[0]).removesuffix(".reason.json"))
    assert kept.read_bytes() == raw  # nothing lost: the bytes are kept as received
    counts = ingestor.redis.hgetall(keys.COUNTS)
    assert counts[f"quarantined:{reason.value}".encode()] == b"1"


def test_good_frames_are_archived_then_windowed(ingestor, feed, redis_conn):
    for path in feed:
        result = ingestor.ingest_bytes(path.read_bytes(), path.name)
        assert result.outcome == "accepted", result
    status = ingestor.window.status("t-1")
    assert status.count == 6 and status.cadence_min == 6 and status.missing == []
    archived = list(ingestor.archive.frames("t-1"))
    assert [p.read_bytes() for p in archived] == [p.read_bytes() for p in feed]
    frame = ingestor.window.frames("t-1")[-1]
    assert frame.grey.shape == (32, 32) and frame.grey.dtype == np.float32
    assert redis_conn.hget(keys.site_meta("t-1"), "grid") == b"96x96"
    assert redis_conn.xlen(keys.EVENTS_STREAM) == 6


def test_unreadable_bytes(ingestor, redis_conn):
    raw = b"this is not a netcdf file" * 10
    _assert_quarantined(
        ingestor.ingest_bytes(raw, "junk.nc"), ingestor, RejectReason.UNREADABLE, raw
    )
    assert redis_conn.smembers(keys.SITES) == set()


def test_truncated_file(ingestor, feed, redis_conn):
    raw = feed[0].read_bytes()[: len(feed[0].read_bytes()) // 2]
    _assert_quarantined(
        ingestor.ingest_bytes(raw, "cut.nc"), ingestor, RejectReason.UNREADABLE, raw
    )


def _write_dataset(path: Path, ds: xr.Dataset) -> bytes:
    ds.to_netcdf(path, engine="netcdf4")
    return path.read_bytes()


def _grid_dataset(name: str, attrs: dict, values=None, time=START) -> xr.Dataset:
    values = np.zeros((1, *SMALL_GRID), np.float32) if values is None else values
    return xr.Dataset(
        {name: (("time", "y", "x"), values, attrs)},
        coords={"time": [np.datetime64(time.replace(tzinfo=None), "s")]},
        attrs={"site_id": "t-1"},
    )


def test_no_precipitation_variable(ingestor, tmp_path):
    ds = _grid_dataset("temp", {"standard_name": "air_temperature", "units": "K"})
    raw = _write_dataset(tmp_path / "t.nc", ds)
    result = ingestor.ingest_bytes(raw, "t.nc")
    _assert_quarantined(result, ingestor, RejectReason.NO_PRECIPITATION_VARIABLE, raw)
    assert "air_temperature" not in result.message and "temp" in result.message


def test_wrong_units(ingestor, tmp_path):
    ds = _grid_dataset("rr", {"standard_name": "rainfall_rate", "units": "m s-1"})
    raw = _write_dataset(tmp_path / "u.nc", ds)
    result = ingestor.ingest_bytes(raw, "u.nc")
    _assert_quarantined(result, ingestor, RejectReason.WRONG_UNITS, raw)
    assert "m s-1" in result.message


def test_all_nan(ingestor, tmp_path):
    path = tmp_path / "nan.nc"
    write_cf_frame(path, np.full(SMALL_GRID, np.nan), START, "t-1", "rain_rate")
    raw = path.read_bytes()
    _assert_quarantined(ingestor.ingest_bytes(raw, "nan.nc"), ingestor, RejectReason.ALL_NAN, raw)


def test_negative_rain(ingestor, tmp_path):
    path = tmp_path / "neg.nc"
    write_cf_frame(path, np.full(SMALL_GRID, -3.0), START, "t-1", "rain_rate")
    raw = path.read_bytes()
    _assert_quarantined(
        ingestor.ingest_bytes(raw, "neg.nc"), ingestor, RejectReason.BAD_VALUES, raw
    )


def test_wrong_grid_for_the_site(ingestor, feed, tmp_path, redis_conn):
    ingestor.ingest_bytes(feed[0].read_bytes(), feed[0].name)
    before = _window_snapshot(redis_conn)
    path = tmp_path / "big.nc"
    write_cf_frame(path, np.ones((128, 128)), START + SIX, "t-1", "rain_rate")
    raw = path.read_bytes()
    result = ingestor.ingest_bytes(raw, "big.nc")
    _assert_quarantined(result, ingestor, RejectReason.WRONG_GRID, raw)
    assert "128 x 128" in result.message and "96 x 96" in result.message
    assert _window_snapshot(redis_conn) == before
    assert result.site_id == "t-1"
    site_counts = redis_conn.hgetall(keys.site_counts("t-1"))
    assert site_counts == {b"accepted": b"1", b"quarantined:wrong_grid": b"1"}


def test_grid_smaller_than_the_crop(ingestor, tmp_path):
    path = tmp_path / "tiny.nc"
    write_cf_frame(path, np.ones((40, 40)), START, "t-1", "rain_rate")
    raw = path.read_bytes()
    _assert_quarantined(
        ingestor.ingest_bytes(raw, "tiny.nc"), ingestor, RejectReason.WRONG_GRID, raw
    )


def test_valid_time_far_in_the_future(ingestor, tmp_path):
    path = tmp_path / "future.nc"
    future = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    write_cf_frame(path, np.ones(SMALL_GRID), future, "t-1", "rain_rate")
    raw = path.read_bytes()
    result = ingestor.ingest_bytes(raw, "future.nc")
    _assert_quarantined(result, ingestor, RejectReason.FUTURE_TIME, raw)
    assert not list(ingestor.archive.frames("t-1"))


def test_duplicate_delivery_changes_nothing(ingestor, feed, redis_conn):
    raw = feed[0].read_bytes()
    assert ingestor.ingest_bytes(raw, "first.nc").outcome == "accepted"
    before = _window_snapshot(redis_conn)
    events = redis_conn.xlen(keys.EVENTS_STREAM)
    _assert_quarantined(
        ingestor.ingest_bytes(raw, "again.nc"), ingestor, RejectReason.DUPLICATE, raw
    )
    assert _window_snapshot(redis_conn) == before
    assert redis_conn.xlen(keys.EVENTS_STREAM) == events


def test_conflicting_frame_for_the_same_time_keeps_the_first(ingestor, feed, tmp_path, redis_conn):
    ingestor.ingest_bytes(feed[0].read_bytes(), feed[0].name)
    before = _window_snapshot(redis_conn)
    other = tmp_path / "other.nc"
    write_cf_frame(other, np.full(SMALL_GRID, 7.0), START, "t-1", "rain_rate")
    raw = other.read_bytes()
    _assert_quarantined(
        ingestor.ingest_bytes(raw, "other.nc"), ingestor, RejectReason.CONFLICT, raw
    )
    assert _window_snapshot(redis_conn) == before
    assert next(ingestor.archive.frames("t-1")).read_bytes() == feed[0].read_bytes()


def test_oversized_frame(tmp_path, redis_conn, feed):
    ingestor = Ingestor(small_settings(tmp_path / "d", max_frame_bytes=2048), redis_conn)
    raw = feed[0].read_bytes()
    _assert_quarantined(ingestor.ingest_bytes(raw, "big.nc"), ingestor, RejectReason.TOO_LARGE, raw)


def test_quarantine_names_cannot_escape_their_folder(ingestor):
    raw = b"junk"
    result = ingestor.ingest_bytes(raw, "../../etc/passwd")
    assert result.outcome == "quarantined"
    kept = list(ingestor.quarantine.root.rglob("*passwd*"))
    assert kept and all(ingestor.quarantine.root in p.parents for p in kept)


def test_frame_older_than_the_window_is_archived_but_leaves_the_window(tmp_path, redis_conn):
    settings = small_settings(tmp_path / "d", window_frames=20)
    ingestor = Ingestor(settings, redis_conn)
    feed = write_synthetic_feed(tmp_path / "f", 22, site_id="t-1", shape=SMALL_GRID)
    for path in feed[1:]:
        ingestor.ingest_bytes(path.read_bytes(), path.name)
    before = _window_snapshot(redis_conn)
    result = ingestor.ingest_bytes(feed[0].read_bytes(), feed[0].name)
    assert result.outcome == "archived_only"
    assert _window_snapshot(redis_conn) == before
    assert len(list(ingestor.archive.frames("t-1"))) == 22


def test_archive_unwritable_refuses_without_losing(ingestor, feed, redis_conn):
    ingestor.archive.root.parent.mkdir(parents=True, exist_ok=True)
    ingestor.archive.root.write_text("a file where the archive folder should be")
    with pytest.raises(ArchiveUnavailable):
        ingestor.ingest_bytes(feed[0].read_bytes(), feed[0].name)
    assert redis_conn.smembers(keys.SITES) == set()
    ingestor.archive.root.unlink()
    assert ingestor.ingest_bytes(feed[0].read_bytes(), feed[0].name).outcome == "accepted"


def test_redelivery_after_a_failed_window_insert_is_accepted(ingestor, feed, redis_conn):
    """Archived but never windowed (Redis failed between): the retry completes the insert."""
    raw = feed[0].read_bytes()
    ingestor.ingest_bytes(raw, feed[0].name)
    redis_conn.flushall()
    assert ingestor.ingest_bytes(raw, feed[0].name).outcome == "accepted"
    assert ingestor.window.status("t-1").count == 1


def test_flush_then_rebuild_restores_the_window_bit_for_bit(ingestor, tmp_path, redis_conn):
    feed = write_synthetic_feed(tmp_path / "f", 25, site_id="t-1", shape=SMALL_GRID)
    for path in feed:
        ingestor.ingest_bytes(path.read_bytes(), path.name)
    before = _window_snapshot(redis_conn)
    assert len(before[0]) == 20
    redis_conn.flushall()
    assert _window_snapshot(redis_conn) == ([], {})
    reports = rebuild_windows(ingestor)
    assert [(r.site_id, r.frames) for r in reports] == [("t-1", 20)]
    assert _window_snapshot(redis_conn) == before
    assert redis_conn.xlen(keys.EVENTS_STREAM) == 0  # a rebuild announces nothing new


def test_site_without_mask_ingests_unmasked(ingestor, feed):
    ingestor.ingest_bytes(feed[0].read_bytes(), feed[0].name)
    assert ingestor.window.frames("t-1")[0].mask_version is None


def test_the_first_georeferenced_frame_fixes_the_sites_geometry(ingestor, tmp_path, redis_conn):
    from core.georef import GridGeoref
    from ingest.cf_writer import SYNTH_GRID_MAPPING

    here = write_synthetic_feed(
        tmp_path / "a", 2, site_id="g-1", shape=SMALL_GRID, grid_mapping=SYNTH_GRID_MAPPING
    )
    elsewhere = {**SYNTH_GRID_MAPPING, "latitude_of_projection_origin": 45.0}
    moved = write_synthetic_feed(
        tmp_path / "b", 3, site_id="g-1", shape=SMALL_GRID, grid_mapping=elsewhere
    )
    unplaced = write_synthetic_feed(tmp_path / "c", 4, site_id="g-1", shape=SMALL_GRID)
    assert ingestor.ingest_bytes(here[0].read_bytes(), "here").outcome == "accepted"
    stored = GridGeoref.from_json(redis_conn.hget(keys.site_meta("g-1"), "georef"))
    assert (stored.nx, stored.ny) == (ingestor.settings.target_cells,) * 2
    result = ingestor.ingest_bytes(moved[2].read_bytes(), "moved")
    assert result.outcome == "quarantined" and result.reason is RejectReason.WRONG_GRID
    assert "lies elsewhere" in result.message
    # a frame without georeference is taken on the site's grid, which stays as it was
    assert ingestor.ingest_bytes(unplaced[3].read_bytes(), "unplaced").outcome == "accepted"
    assert GridGeoref.from_json(redis_conn.hget(keys.site_meta("g-1"), "georef")) == stored


def test_real_frames_carry_their_projection(shared_radar):
    from ingest.reader import read_radar_file

    expected = {  # (folder, lon, lat) a point inside each network's grid
        "bom-melbourne-6min": (144.75, -37.85),
        "fmi-finland-5min-20160928": (25.0, 62.0),
        "knmi-netherlands-5min-dbz": (5.2, 52.1),
    }
    for folder, (lon, lat) in expected.items():
        frame = next((shared_radar / folder).rglob("*.nc"))
        georef = read_radar_file(frame).georef
        assert georef is not None, folder
        lon_min, lat_min, lon_max, lat_max = georef.bounds_lonlat()
        assert lon_min < lon < lon_max and lat_min < lat < lat_max, folder
        assert georef.cell_of(lon, lat) is not None
    dpc = next((shared_radar / "dpc-italy-5min-dbz-20250416").glob("*.nc"), None)
    if dpc is not None:  # no georeference in the source: grid indices only
        assert read_radar_file(dpc).georef is None
