"""Hostile frames cost nothing (issue 33, findings 1-3): a stray date cannot stretch a window
or its gap report, a small compressed file cannot expand into gigabytes, and values no radar
measures are nodata or refused."""

from __future__ import annotations

import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta

import h5py
import numpy as np
import pytest

from core import keys
from core.frame import MAX_GRID_CELLS, FrameRejected, RejectReason
from ingest.cf_writer import write_cf_frame
from ingest.ingestor import CELLS_BEYOND_BOUNDS, Ingestor
from ingest.reader import RAIN_RATE_MAX_MMH, read_radar_bytes
from ingest.status import format_statuses, site_statuses
from ingest.window import InsertOutcome, WindowStore, count_missing_slots, missing_slots
from tests.ingest.helpers import SMALL_GRID, START, grey_frame, small_settings
from tests.ingest.odim_writer import odim_bytes

SIX = timedelta(minutes=6)
EPOCH_1970 = datetime(1970, 1, 1, tzinfo=UTC)


# -- 1. a frame of 1970 ----------------------------------------------------------------------


def test_a_1970_frame_before_the_feed_leaves_a_bounded_gap_report(redis_conn):
    """Issue 33, finding 1: GET /v1/sites listed every 6-minute slot back to 1970 (113 MB)."""
    store = WindowStore(redis_conn, window_frames=20, events_maxlen=1000, max_span_min=1440)
    assert store.insert(grey_frame("a", EPOCH_1970)) is InsertOutcome.INSERTED
    for i in range(5):
        assert store.insert(grey_frame("a", START + SIX * i)) is InsertOutcome.INSERTED
    status = store.status("a")
    assert status.count == 6 and status.oldest == EPOCH_1970
    assert len(status.missing) == 20 and status.missing[-1] == START - SIX
    slots = int((START - EPOCH_1970).total_seconds()) // 360
    assert status.missing_count == slots - 1  # every slot but 1970's, counted not listed
    for i in range(5, 40):  # 20 newer frames push it out
        store.insert(grey_frame("a", START + SIX * i))
    assert store.status("a").oldest > EPOCH_1970


def test_a_1970_frame_after_the_feed_is_archived_only(redis_conn):
    store = WindowStore(redis_conn, window_frames=20, events_maxlen=1000, max_span_min=1440)
    for i in range(5):
        store.insert(grey_frame("a", START + SIX * i))
    assert store.insert(grey_frame("a", EPOCH_1970)) is InsertOutcome.TOO_OLD
    assert store.status("a").oldest == START


def test_the_gap_report_is_bounded_by_the_window_whatever_the_span():
    """Decades of 6-minute slots are counted, not listed: the list holds the newest 20."""
    epochs = [int(EPOCH_1970.timestamp()), int(START.timestamp()), int((START + SIX).timestamp())]
    listed = missing_slots(epochs, 6, limit=20)
    assert len(listed) == 20
    assert listed[-1] == START - SIX and listed == sorted(listed)
    expected = (epochs[-1] - epochs[0]) // 360 + 1 - 3
    assert count_missing_slots(epochs, 6) == expected > 4_000_000


def test_status_of_a_site_with_a_stray_date_stays_small(tmp_path, redis_conn):
    """What `nowcast status` and GET /v1/sites read: at most the window's size in gaps."""
    settings = small_settings(tmp_path / "data", window_max_span_min=30 * 1440)
    store = WindowStore.from_settings(redis_conn, settings)
    for i in (0, 1, 3):
        store.insert(grey_frame("a", START + SIX * i))
    store.insert(grey_frame("a", START - timedelta(days=29)))  # within the span: kept
    (status,) = site_statuses(redis_conn, settings)
    assert len(status.window.missing) == settings.window_frames
    assert status.window.missing_count == 29 * 240 + 1 - 1
    text = format_statuses([status], {})
    assert len(text) < 2000 and str(status.window.missing_count) in text


def test_a_live_feed_quarantines_a_frame_older_than_max_age(tmp_path, redis_conn):
    settings = small_settings(tmp_path / "data", max_age_min=1440)
    ingestor = Ingestor(settings, redis_conn)
    path = tmp_path / "old.nc"
    write_cf_frame(path, np.ones(SMALL_GRID), EPOCH_1970, "t-1", "rain_rate")
    result = ingestor.ingest_bytes(path.read_bytes(), "old.nc")
    assert result.outcome == "quarantined" and result.reason is RejectReason.PAST_TIME
    assert "1970-01-01" in result.message and not redis_conn.exists(keys.window_times("t-1"))


# -- 2. an ODIM_H5 decompression bomb --------------------------------------------------------


def _odim_bomb(side: int = 16384) -> bytes:
    """A valid ODIM_H5 composite of side x side cells that compresses to almost nothing."""
    template = odim_bytes(np.zeros((4, 4), dtype=np.uint16), START)
    buffer = io.BytesIO(template)
    with h5py.File(buffer, "r+") as h5:
        del h5["dataset1/data1/data"]
        h5["dataset1/data1"].create_dataset(
            "data", shape=(side, side), dtype="u1", chunks=(1024, 1024), compression="gzip",
            fillvalue=1,
        )  # fmt: skip
        h5["where"].attrs["xsize"] = h5["where"].attrs["ysize"] = side
    return buffer.getvalue()


def test_an_odim_bomb_is_refused_from_its_metadata_before_any_data_is_read(ingestor):
    bomb = _odim_bomb()
    assert len(bomb) < 1_000_000 and MAX_GRID_CELLS < 16384**2
    tracemalloc.start()
    try:
        with pytest.raises(FrameRejected) as refused:
            read_radar_bytes(bomb, "bomb.h5")
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.reason is RejectReason.BAD_SHAPE
    assert "16384 x 16384" in refused.value.message
    assert peak_bytes < 32 * 1024 * 1024  # the 268 MB of cells (2 GB as float64) never read
    result = ingestor.ingest_bytes(bomb, "bomb.h5")
    assert result.outcome == "quarantined" and result.reason is RejectReason.BAD_SHAPE


# -- 3. values no radar measures -------------------------------------------------------------


def _rain_frame(tmp_path, rain_mmh: np.ndarray, name: str = "f.nc") -> bytes:
    path = tmp_path / name
    write_cf_frame(path, rain_mmh, START, "t-1", "rain_rate")
    return path.read_bytes()


@pytest.mark.parametrize("rain_mmh", [1e30, 500.0])
def test_a_frame_of_impossible_rain_everywhere_is_refused(ingestor, tmp_path, rain_mmh):
    raw = _rain_frame(tmp_path, np.full(SMALL_GRID, rain_mmh))
    result = ingestor.ingest_bytes(raw, "f.nc")
    assert result.outcome == "quarantined" and result.reason is RejectReason.BAD_VALUES
    assert f"above {RAIN_RATE_MAX_MMH:g} mm/h" in result.message
    assert not ingestor.redis.exists(keys.window_times("t-1"))


def test_a_spike_of_impossible_rain_is_read_as_nodata_and_counted(ingestor, tmp_path, redis_conn):
    rain = np.full(SMALL_GRID, 2.0)
    rain[40, 50] = 1e30
    rain[10, 10] = RAIN_RATE_MAX_MMH  # the bound itself is rain
    field = read_radar_bytes(_rain_frame(tmp_path, rain), "spike.nc")
    assert np.isnan(field.dbz[40, 50]) and np.isfinite(field.dbz[10, 10])
    assert field.cells_beyond_bounds == 1
    result = ingestor.ingest_bytes(_rain_frame(tmp_path, rain, "spike2.nc"), "spike2.nc")
    assert result.outcome == "accepted"
    (frame,) = ingestor.window.frames("t-1")
    assert float(frame.grey.max()) < 0.6  # 2 mm/h is about 29 dBZ: grey 0.49, no 1e30 left
    assert redis_conn.hget(keys.site_counts("t-1"), CELLS_BEYOND_BOUNDS) == b"1"
    assert redis_conn.get(keys.CELLS_BEYOND_BOUNDS) == b"1"


def test_reflectivity_beyond_what_a_radar_measures_is_nodata(tmp_path):
    dbz = np.full(SMALL_GRID, 30.0)
    dbz[0, 0] = 95.0
    path = tmp_path / "z.nc"
    write_cf_frame(path, dbz, START, "t-1", "reflectivity")
    field = read_radar_bytes(path.read_bytes(), "z.nc")
    assert np.isnan(field.dbz[0, 0]) and field.cells_beyond_bounds == 1


_STORED = np.full((96, 96), 200, dtype=np.uint16)  # 2 mm/h at gain 0.01


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"gain": 1e30}, "above 300 mm/h"),
        ({"gain": None}, "what/gain"),
        ({"gain": None, "offset": None}, "what/gain, what/offset"),
        ({"nodata": None}, "what/nodata"),
        ({"undetect": None}, "what/undetect"),
    ],
)
def test_odim_without_its_scaling_or_masks_or_with_absurd_gain_is_refused(ingestor, options, words):
    result = ingestor.ingest_bytes(odim_bytes(_STORED, START, **options), "odim.h5")
    assert result.outcome == "quarantined" and result.reason is RejectReason.BAD_VALUES, result
    assert words in result.message


# -- 4. a quarantine that cannot fill the disk -----------------------------------------------


def test_the_quarantine_notes_but_stops_keeping_bytes_once_full(tmp_path, redis_conn):
    """Issue 33, finding 4: one probe left 162 MB in quarantine, with no cap."""
    settings = small_settings(tmp_path / "data", quarantine_max_bytes=1024 * 1024)
    ingestor = Ingestor(settings, redis_conn)
    junk = [bytes([i]) * 400_000 for i in range(4)]  # unreadable: quarantined
    results = [ingestor.ingest_bytes(raw, f"junk{i}.nc") for i, raw in enumerate(junk)]
    assert all(r.outcome == "quarantined" for r in results)
    notes = sorted(ingestor.quarantine.root.glob("*/*.reason.json"))
    assert len(notes) == 4  # every refusal is noted, with its reason and fingerprint
    kept = [json.loads(n.read_text())["kept"] for n in notes]
    assert kept == [True, True, False, False]
    bytes_held = sum(p.stat().st_size for p in ingestor.quarantine.root.rglob("*") if p.is_file())
    assert bytes_held <= 1024 * 1024
    last = json.loads(notes[-1].read_text())
    assert last["bytes"] == 400_000 and len(last["sha256"]) == 64 and last["not_kept_because"]
