"""Redis killed (SIGKILL) and restarted in the middle of a stream of frames.

Real processes on one Redis server: ``nowcast ingest --watch`` on a folder a feed drops frames
into, two ``nowcast infer`` workers. The server is killed with SIGKILL once some frames are in,
stays down while frames keep arriving, then restarts from its append-only file. Every frame
must reach the archive and the window, every issue time must be forecast exactly once by each
method, and each (method, issue time, lead) verified once: counts not doubled by the replays
that follow the restart.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import timedelta

import pytest

from core import keys
from core.worker import live_states
from ingest.cf_writer import write_synthetic_feed
from ingest.worker import healthy_workers, push_frame
from service.methods_runner import N_INPUTS, N_LEADS
from service.verification_store import VerificationStore
from tests.reliability.procs import (
    drop,
    nowcast,
    nowcast_env,
    redis_server,
    run_nowcast,
    wait_until,
)
from tests.service.helpers import FEED_START

METHODS = ("convlstm", "persistence")
SITE = "rr-1"
CELLS = 32 * 32  # the normalised grid (NOWCAST_TARGET_CELLS=32)


def expected_cells_by_lead(n_frames: int) -> list[int]:
    """Verified cells per lead once every frame is in: each (issue time, lead) whose
    observation is in the feed counts the 32 x 32 grid once."""
    issues = range(N_INPUTS - 1, n_frames)
    return [CELLS * sum(k + lead < n_frames for k in issues) for lead in range(1, N_LEADS + 1)]


def verified_cells_by_lead(client, method: str) -> list[int]:
    summed = VerificationStore(client, 3600).summed([SITE], method, N_LEADS)
    return [int(n) for n in summed.n_cells]


def run_feed_through_a_redis_outage(
    tmp_path, small_checkpoint, n_frames, down_s, kill_after, persist
):
    """Feed ``n_frames`` into the watched folder (one every 0.3 s); kill Redis once
    ``kill_after`` frames are archived, keep it down ``down_s`` s; restart. Returns the
    Redis client and the worker logs, once everything is in (or fails on a deadline)."""
    feed = write_synthetic_feed(
        tmp_path / "feed", n_frames, site_id=SITE, shape=(96, 96), seed=11, start=FEED_START
    )
    watched = tmp_path / "incoming"
    watched.mkdir()
    data = tmp_path / "data"
    archive = data / "archive" / SITE
    with redis_server(tmp_path / "redis", persist) as server:
        env = nowcast_env(
            data,
            server.url,
            checkpoints=json.dumps({"convlstm": str(small_checkpoint)}),
            methods=f'["{METHODS[0]}", "{METHODS[1]}"]',
            infer_claim_idle_ms=2000,
        )
        with (
            nowcast(["ingest", str(watched), "--watch"], env, tmp_path / "ingest.log") as ingest,
            nowcast(["infer"], env, tmp_path / "infer-a.log") as infer_a,
            nowcast(["infer"], env, tmp_path / "infer-b.log") as infer_b,
        ):
            procs = [ingest.proc, infer_a.proc, infer_b.proc]
            client = server.client()
            wait_until(  # every worker running (not still starting) when Redis goes
                lambda: (
                    len(live_states(client, keys.INFER_HEALTH)) == 2 and healthy_workers(client)
                ),
                90,
                "the workers to start",
                procs,
            )
            stop_feed = threading.Event()

            def deliver():
                for path in feed:
                    if stop_feed.wait(0.3):
                        return
                    drop(path, watched)

            feeder = threading.Thread(target=deliver, daemon=True)
            feeder.start()
            try:
                wait_until(
                    lambda: len(list(archive.rglob("*.nc"))) >= kill_after,
                    90,
                    f"{kill_after} frames archived",
                    procs,
                )
                server.kill()
                time.sleep(down_s)  # frames keep arriving; workers retry
                assert all(p.poll() is None for p in procs), "a worker died with Redis down"
                server.start()
                client = server.client()
                issues = n_frames - (N_INPUTS - 1)
                cells = expected_cells_by_lead(n_frames)
                with contextlib.suppress(AssertionError):  # what is missing is asserted below
                    wait_until(
                        lambda: (
                            client.xlen(keys.FORECAST_EVENTS) >= issues
                            and all(verified_cells_by_lead(client, m) == cells for m in METHODS)
                            and _pending(client) == 0
                        ),
                        90,
                        "every issue time forecast and verified after the restart",
                        procs,
                    )
                time.sleep(1.0)  # a late duplicate would show up here
                return snapshot(client, tmp_path)
            finally:
                stop_feed.set()
                feeder.join(timeout=10)


def _pending(client) -> int:
    return int(client.xpending(keys.EVENTS_STREAM, keys.INFER_GROUP)["pending"])


def snapshot(client, tmp_path) -> dict:
    """What the assertions need, read before the server goes away."""
    return {
        "window": [
            int(score)
            for _, score in client.zrange(keys.window_times(SITE), 0, -1, withscores=True)
        ],
        "announced": [
            (f[b"site"], f[b"issue_time"]) for _, f in client.xrange(keys.FORECAST_EVENTS)
        ],
        "infer": {k.decode(): int(v) for k, v in client.hgetall(keys.INFER_COUNTS).items()},
        "ingest": {k.decode(): int(v) for k, v in client.hgetall(keys.COUNTS).items()},
        "pending": _pending(client),
        "cells": {m: verified_cells_by_lead(client, m) for m in METHODS},
        "archived": len(list((tmp_path / "data" / "archive").rglob("*.nc"))),
        "logs": {
            name: (tmp_path / f"{name}.log").read_text()
            for name in ("ingest", "infer-a", "infer-b")
        },
    }


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "persist",
    [
        pytest.param(True, id="with-its-data"),
        pytest.param(False, id="without-its-data", marks=pytest.mark.long),
    ],
)
def test_redis_killed_mid_stream_loses_no_frame_forecast_or_verification(
    tmp_path, small_checkpoint, persist
):
    """With its data (append-only file) Redis comes back as it was; without it (no
    persistence: everything is gone) the ingest worker takes the feed's files again (the
    record of seen files went too), which rebuilds the window from the same bytes, and the
    forecasts and verification are made again, once: the end state is the same."""
    n_frames = 12
    seen = run_feed_through_a_redis_outage(
        tmp_path, small_checkpoint, n_frames, down_s=3.0, kill_after=5, persist=persist
    )
    assert seen["archived"] == n_frames
    times = [FEED_START + timedelta(minutes=6 * i) for i in range(n_frames)]
    assert seen["window"] == [int(t.timestamp()) for t in times]
    issues = n_frames - (N_INPUTS - 1)
    assert len(seen["announced"]) == len(set(seen["announced"])) == issues
    counts = seen["infer"]
    for method in METHODS:
        assert counts[f"issued:{method}"] == issues, counts
    # each (method, issue time, lead) verified once: counts complete, not doubled
    for method in METHODS:
        assert seen["cells"][method] == expected_cells_by_lead(n_frames), (method, seen["cells"])
    # the "verified" tally moves with the counts (one Lua script): exact too
    pairs = sum(expected_cells_by_lead(n_frames)) // CELLS
    assert counts["verified"] == len(METHODS) * pairs, counts
    assert seen["pending"] == 0
    # a frame the kill caught half-way (its window insert ran but the reply, the count or the
    # "seen" mark was cut off) is taken again and found in the window already: a duplicate,
    # nothing lost (the window check above)
    ingest = seen["ingest"]
    duplicates = ingest.get("quarantined:duplicate", 0)
    assert n_frames - duplicates <= ingest.get("accepted", 0) <= n_frames, ingest
    assert set(ingest) <= {"accepted", "quarantined:duplicate"}, ingest
    logs = seen["logs"]
    assert "redis unavailable" in logs["ingest"]  # the outage was really seen
    assert "redis unavailable" in logs["infer-a"] + logs["infer-b"]


@pytest.mark.long
@pytest.mark.timeout(300)
def test_redis_data_lost_the_window_is_rebuilt_from_the_archive_and_forecasts_go_on(
    tmp_path, small_checkpoint
):
    """Frames that came only by the stream live only in the archive. Redis loses everything
    (SIGKILL, no persistence); ``nowcast ingest --rebuild`` brings the windows back from the
    archive, so the next frames are forecast at once instead of warming up again."""
    feed = write_synthetic_feed(
        tmp_path / "feed", 12, site_id=SITE, shape=(96, 96), seed=12, start=FEED_START
    )
    data = tmp_path / "data"
    with redis_server(tmp_path / "redis", persist=False) as server:
        env = nowcast_env(
            data,
            server.url,
            checkpoints=json.dumps({"convlstm": str(small_checkpoint)}),
            methods='["persistence"]',
            publish_method="persistence",
        )
        with (
            nowcast(["ingest", "--watch"], env, tmp_path / "ingest.log") as ingest,
            nowcast(["infer"], env, tmp_path / "infer.log") as infer,
        ):
            procs = [ingest.proc, infer.proc]
            client = server.client()
            for path in feed[:8]:
                push_frame(client, path.read_bytes(), path.name)
            wait_until(lambda: client.xlen(keys.FORECAST_EVENTS) == 4, 90, "4 issue times", procs)
            server.kill()
            server.start()  # empty
            client = server.client()
            assert client.dbsize() == 0
            rebuilt = run_nowcast(["ingest", "--rebuild"], env)
            assert rebuilt.returncode == 0, rebuilt.stderr
            assert f"rebuilt {SITE}: 8 frames" in rebuilt.stdout
            assert client.zcard(keys.window_times(SITE)) == 8
            for path in feed[8:]:
                push_frame(client, path.read_bytes(), path.name)
            wait_until(
                lambda: (
                    client.xlen(keys.FORECAST_EVENTS) == 4
                    and client.xlen(keys.INCOMING_STREAM) == 0
                ),
                90,
                "the 4 new issue times forecast on the rebuilt window",
                procs,
            )
            time.sleep(1.0)
            issued = sorted(f[b"issue_time"] for _, f in client.xrange(keys.FORECAST_EVENTS))
            refused = client.hget(keys.INFER_COUNTS, "refused:warming_up")
            window = client.zcard(keys.window_times(SITE))
    expected = [
        (FEED_START + timedelta(minutes=6 * k)).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        for k in range(8, 12)
    ]
    assert issued == expected  # each new issue time once, none refused for warming up
    assert refused is None
    assert window == 12
    assert len(list((data / "archive").rglob("*.nc"))) == 12
