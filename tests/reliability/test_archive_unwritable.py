"""The archive folder unwritable: ingest refuses frames with a clear error and does not
acknowledge them, then takes every one of them once the folder is writable again.

A real ``nowcast ingest --watch`` process, frames arriving three ways (files dropped into the
watched folder, ``nowcast push`` onto the Redis stream, HTTP POST to the API), while the
archive folder is unusable (a file stands where the folder should be: every write fails with
an OSError, as a full or read-only disk would). Nothing may be accepted, quarantined or
acknowledged meanwhile; after the folder is freed all frames must be archived and windowed.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core import keys
from ingest.cf_writer import write_synthetic_feed
from service.api.app import create_app
from tests.reliability.procs import drop, nowcast, nowcast_env, run_nowcast, wait_until
from tests.service.helpers import API_KEY, service_settings

SITE = "au-1"


@pytest.mark.timeout(180)
def test_frames_are_refused_unacknowledged_then_all_taken_when_the_archive_is_back(
    tmp_path, redis_conn, redis_url, small_checkpoint
):
    feed = write_synthetic_feed(tmp_path / "feed", 6, site_id=SITE, shape=(96, 96), seed=4)
    data = tmp_path / "data"
    data.mkdir()
    archive = data / "archive"
    archive.write_text("a file where the archive folder should be")
    watched = tmp_path / "incoming"
    watched.mkdir()
    env = nowcast_env(data, redis_url)
    settings = service_settings(data, small_checkpoint, api_keys=[API_KEY])

    with nowcast(["ingest", str(watched), "--watch"], env, tmp_path / "ingest.log") as ingest:
        for path in feed[:3]:
            drop(path, watched)
        pushed = run_nowcast(["push", *map(str, feed[3:5])], env)
        assert pushed.returncode == 0, pushed.stderr
        with TestClient(create_app(settings, redis_conn)) as api:
            post = api.post(
                f"/v1/sites/{SITE}/frames",
                content=feed[5].read_bytes(),
                headers={"X-API-Key": API_KEY},
            )
            assert post.status_code == 503, post.text
            assert "archive" in post.json()["detail"] and "retry" in post.json()["detail"]

            wait_until(
                lambda: ingest.log.count("cannot archive") >= 5 * 2,  # each tried again
                60,
                "the worker to refuse every frame (twice)",
                [ingest.proc],
            )
            assert redis_conn.zcard(keys.window_times(SITE)) == 0
            pending = redis_conn.xpending(keys.INCOMING_STREAM, keys.INCOMING_GROUP)
            assert pending["pending"] == 2  # pushed frames: read, not acknowledged
            assert redis_conn.scard(keys.SEEN_FILES) == 0  # files: not marked seen
            assert not redis_conn.hgetall(keys.COUNTS)  # neither accepted nor quarantined
            assert not (data / "quarantine").exists()
            assert "Not a directory" in ingest.log  # the reason, in the log

            archive.unlink()  # the disk is back
            retried = api.post(
                f"/v1/sites/{SITE}/frames",
                content=feed[5].read_bytes(),
                headers={"X-API-Key": API_KEY},
            )
            assert retried.status_code == 201, retried.text
        wait_until(
            lambda: redis_conn.zcard(keys.window_times(SITE)) == 6,
            60,
            "every frame windowed once the archive is back",
            [ingest.proc],
        )
    assert sorted(p.name for p in archive.rglob("*.nc")) == sorted(p.name for p in feed)
    assert redis_conn.xpending(keys.INCOMING_STREAM, keys.INCOMING_GROUP)["pending"] == 0
    assert redis_conn.xlen(keys.INCOMING_STREAM) == 0
    assert {k.decode(): int(v) for k, v in redis_conn.hgetall(keys.COUNTS).items()} == {
        "accepted": 6
    }
    assert redis_conn.xlen(keys.EVENTS_STREAM) == 6  # one frame event each, no more
