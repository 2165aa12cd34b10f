"""The worker loop: folders in time order, watching, pushed frames, signals."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from core import keys
from ingest.cf_writer import write_synthetic_feed
from ingest.ingestor import Ingestor
from ingest.worker import IngestWorker, push_frame
from tests.ingest.helpers import SMALL_GRID, small_settings


@pytest.fixture
def settings(tmp_path):
    return small_settings(tmp_path / "data", poll_interval_s=0.1)


@pytest.fixture
def worker(settings, redis_conn):
    return IngestWorker(Ingestor(settings, redis_conn), settings, settle_s=0.0)


def _wait_for(predicate, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_existing_files_are_taken_in_valid_time_order(worker, tmp_path, redis_conn):
    feed = write_synthetic_feed(tmp_path / "src", 6, site_id="t-1", shape=SMALL_GRID)
    incoming = tmp_path / "in"
    incoming.mkdir()
    # names that sort against time: arrival/name order must not matter
    for i, path in enumerate(feed):
        shutil.copy(path, incoming / f"z{9 - i}.nc")
    (incoming / "a-broken.nc").write_bytes(b"garbage")
    tally = worker.run_folders([incoming], watch=False)
    assert tally.by_outcome == {"accepted": 6, "quarantined": 1}
    events = redis_conn.xrange(keys.EVENTS_STREAM)
    times = [e[1][b"valid_time"] for e in events]
    assert times == sorted(times) and len(times) == 6


def test_a_second_pass_skips_files_already_seen(worker, tmp_path):
    feed_dir = tmp_path / "src"
    write_synthetic_feed(feed_dir, 3, site_id="t-1", shape=SMALL_GRID)
    assert worker.ingest_folders([feed_dir]) == 3
    assert worker.ingest_folders([feed_dir]) == 0
    assert not list(worker.ingestor.quarantine.root.rglob("*.json"))


def test_watch_takes_new_files_and_pushed_frames_then_stops(worker, tmp_path, redis_conn):
    feed = write_synthetic_feed(tmp_path / "src", 4, site_id="t-1", shape=SMALL_GRID)
    watched = tmp_path / "watched"
    watched.mkdir()
    thread = threading.Thread(target=worker.run_folders, args=([watched], True), daemon=True)
    thread.start()
    shutil.copy(feed[0], watched / feed[0].name)
    _wait_for(lambda: worker.ingestor.window.status("t-1").count == 1)
    push_frame(redis_conn, feed[1].read_bytes(), feed[1].name)
    push_frame(redis_conn, b"not a frame", "bad.nc")
    _wait_for(lambda: worker.ingestor.window.status("t-1").count == 2)
    _wait_for(lambda: worker.tally.by_outcome.get("quarantined") == 1)
    assert redis_conn.xlen(keys.INCOMING_STREAM) == 0  # acknowledged and removed
    assert redis_conn.exists(f"{keys.HEALTH}:{worker.consumer}")
    worker.request_stop()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_pushed_frame_stays_pending_while_the_archive_is_unwritable(worker, tmp_path, redis_conn):
    feed = write_synthetic_feed(tmp_path / "src", 1, site_id="t-1", shape=SMALL_GRID)
    archive = worker.ingestor.archive.root
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_text("blocked")
    push_frame(redis_conn, feed[0].read_bytes(), feed[0].name)
    assert worker.ingest_stream(block_ms=10) == 0
    pending = redis_conn.xpending(keys.INCOMING_STREAM, keys.INCOMING_GROUP)
    assert pending["pending"] == 1
    archive.unlink()
    assert worker.ingest_stream(block_ms=10) == 1
    assert worker.ingestor.window.status("t-1").count == 1
    assert redis_conn.xpending(keys.INCOMING_STREAM, keys.INCOMING_GROUP)["pending"] == 0


def test_sigterm_finishes_and_exits_cleanly(tmp_path, redis_url):
    feed_dir = tmp_path / "feed"
    write_synthetic_feed(feed_dir, 2, site_id="t-1", shape=SMALL_GRID)
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "NOWCAST_DATA_DIR": str(tmp_path / "data"),
        "NOWCAST_CROP_CELLS": "64",
        "NOWCAST_TARGET_CELLS": "32",
        "NOWCAST_POLL_INTERVAL_S": "0.2",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "ingest", str(feed_dir), "--watch"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        archive = tmp_path / "data" / "archive" / "t-1"
        while time.monotonic() < deadline and len(list(archive.rglob("*.nc"))) < 2:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "accepted site=t-1" in out
    assert "stopping" in out and "ingested: {'accepted': 2}" in out
