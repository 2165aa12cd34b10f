"""The rolling window against a real Redis server."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from core import keys
from ingest.codec import decode_frame
from ingest.window import (
    InsertOutcome,
    WindowError,
    WindowGapError,
    WindowStore,
    infer_cadence_min,
    missing_slots,
)
from tests.ingest.helpers import START, grey_frame

SIX = timedelta(minutes=6)


@pytest.fixture
def store(redis_conn):
    return WindowStore(redis_conn, window_frames=20, events_maxlen=1000)


def test_frames_are_ordered_by_valid_time_not_arrival(store):
    times = [START + SIX * i for i in range(10)]
    for i in [3, 0, 9, 5, 1, 2, 8, 4, 7, 6]:
        assert store.insert(grey_frame("a", times[i], value=i / 10)) is InsertOutcome.INSERTED
    frames = store.frames("a")
    assert [f.valid_time for f in frames] == times
    assert [float(f.grey[0, 0]) for f in frames] == pytest.approx([i / 10 for i in range(10)])


def test_window_keeps_the_newest_n_and_refuses_older_than_window(store, redis_conn):
    for i in range(25):
        store.insert(grey_frame("a", START + SIX * i))
    epochs = store.epochs("a")
    assert len(epochs) == 20
    assert epochs[0] == int((START + SIX * 5).timestamp())
    assert redis_conn.hlen(keys.window_frames("a")) == 20  # dropped frames leave no blob
    before = store.frames("a")
    assert store.insert(grey_frame("a", START + SIX * 2)) is InsertOutcome.TOO_OLD
    after = store.frames("a")
    assert [f.valid_time for f in after] == [f.valid_time for f in before]


def test_late_frame_inside_the_window_fills_its_gap(store):
    for i in [0, 1, 2, 4, 5]:
        store.insert(grey_frame("a", START + SIX * i))
    assert store.status("a").missing == [START + SIX * 3]
    assert store.insert(grey_frame("a", START + SIX * 3)) is InsertOutcome.INSERTED
    assert store.status("a").missing == []


def test_redelivery_is_idempotent_and_conflict_keeps_the_first(store, redis_conn):
    frame = grey_frame("a", START, value=0.25)
    assert store.insert(frame) is InsertOutcome.INSERTED
    events = redis_conn.xlen(keys.EVENTS_STREAM)
    assert store.insert(frame) is InsertOutcome.DUPLICATE
    assert store.insert(grey_frame("a", START, value=0.75)) is InsertOutcome.CONFLICT
    assert redis_conn.xlen(keys.EVENTS_STREAM) == events  # no second event
    assert float(store.frames("a")[0].grey[0, 0]) == 0.25


def test_each_insert_appends_one_event(store, redis_conn):
    store.insert(grey_frame("a", START))
    store.insert(grey_frame("b", START + SIX))
    store.insert(grey_frame("b", START + 2 * SIX), emit_event=False)
    entries = redis_conn.xrange(keys.EVENTS_STREAM)
    assert [(e[1][b"site"], e[1][b"valid_time"]) for e in entries] == [
        (b"a", b"2026-01-01T00:00:00Z"),
        (b"b", b"2026-01-01T00:06:00Z"),
    ]


def test_last_consecutive_returns_frames_or_names_the_gap(store):
    for i in [0, 1, 2, 3, 4, 5, 6, 8, 9]:
        store.insert(grey_frame("a", START + SIX * i))
    with pytest.raises(WindowGapError) as info:
        store.last_consecutive("a", 5)
    assert info.value.missing == [START + SIX * 7]
    assert "2026-01-01T00:42Z" in str(info.value)
    store.insert(grey_frame("a", START + SIX * 7))
    frames = store.last_consecutive("a", 5)
    assert [f.valid_time for f in frames] == [START + SIX * i for i in range(5, 10)]


def test_last_consecutive_refuses_too_few_frames_and_inconsistent_spacing(store):
    for i in range(3):
        store.insert(grey_frame("a", START + SIX * i))
    with pytest.raises(WindowError, match="3 frames"):
        store.last_consecutive("a", 5)
    # a 5-minute frame among 6-minute ones: the spacing is inconsistent, refused
    for i in range(3, 6):
        store.insert(grey_frame("a", START + SIX * i))
    store.insert(grey_frame("a", START + SIX * 5 + timedelta(minutes=5)))
    with pytest.raises(WindowGapError):
        store.last_consecutive("a", 5)


def test_configured_cadence_wins_over_inferred(store):
    for i in range(6):
        store.insert(grey_frame("a", START + timedelta(minutes=10) * i))
    assert store.status("a").cadence_min == 10
    with pytest.raises(WindowGapError):
        store.last_consecutive("a", 5, configured_cadence_min=5)


def test_stored_blob_is_compact_and_decodes_bit_exact(store, redis_conn):
    grey = np.random.default_rng(0).random((32, 32), dtype=np.float32)
    frame = grey_frame("a", START)
    frame = type(frame)(frame.site_id, frame.valid_time, grey, "n1-x", "m1")
    store.insert(frame)
    blob = redis_conn.hget(keys.window_frames("a"), str(int(START.timestamp())))
    assert len(blob) < grey.nbytes + 64
    back = decode_frame(blob)
    assert np.array_equal(back.grey, grey) and back.mask_version == "m1"


def test_cadence_inference_and_missing_slots():
    base = int(START.timestamp())
    epochs = [base + 300 * i for i in (0, 1, 2, 4, 5, 8)]
    assert infer_cadence_min(epochs) == 5
    assert infer_cadence_min([base]) is None
    assert missing_slots(epochs, 5) == [START + timedelta(minutes=m) for m in (15, 30, 35)]
