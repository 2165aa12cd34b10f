"""Frames out of order, duplicated, delayed past the window, and a clock jump, through the real
workers (``nowcast ingest --watch`` and ``nowcast infer``) with frames pushed on the stream one
at a time, in a hostile arrival order.

Every distinct frame must be archived once; a re-delivery is a duplicate that changes nothing;
a frame older than the window is archived only; the window stays ordered by valid time; and
every issue time whose five input frames all arrived is forecast exactly once, including those
whose inputs arrived after the issue time's own frame (out of order), while the issue times
across the clock jump are refused with the reason "gap".
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from core import keys
from core.worker import live_states
from ingest.cf_writer import write_synthetic_feed
from ingest.worker import push_frame
from service.forecast import parse_time
from service.methods_runner import N_INPUTS
from tests.reliability.procs import nowcast, nowcast_env, wait_until
from tests.service.helpers import FEED_START

SITE = "od-1"
CADENCE = timedelta(minutes=6)
JUMP = timedelta(minutes=60)


def expected_issue_times(delivered: set) -> set:
    """Issue times whose 5 consecutive input frames were all delivered (in the window)."""
    return {t for t in delivered if all(t - k * CADENCE in delivered for k in range(N_INPUTS))}


@pytest.mark.timeout(240)
def test_disordered_duplicated_late_and_jumping_frames_lose_nothing(
    tmp_path, redis_conn, redis_url, small_checkpoint
):
    f = write_synthetic_feed(tmp_path / "f", 12, site_id=SITE, shape=(96, 96), start=FEED_START)
    jumped = FEED_START + 11 * CADENCE + JUMP  # the radar's clock jumps an hour ahead
    g = write_synthetic_feed(tmp_path / "g", 10, site_id=SITE, shape=(96, 96), start=jumped, seed=2)
    arrivals = [
        *(f[1], f[2], f[4], f[3], f[5], f[5], f[6], f[8], f[7], f[9], f[10], f[11], f[11]),
        *g,
        f[0],  # delayed past the window (20 frames)
    ]
    env = nowcast_env(
        tmp_path / "data",
        redis_url,
        checkpoints=json.dumps({"convlstm": str(small_checkpoint)}),
        methods='["persistence"]',
        publish_method="persistence",
        window_frames=20,
    )
    with (
        nowcast(["ingest", "--watch"], env, tmp_path / "ingest.log") as ingest,
        nowcast(["infer"], env, tmp_path / "infer.log") as infer,
    ):
        procs = [ingest.proc, infer.proc]
        wait_until(
            lambda: live_states(redis_conn, keys.INFER_HEALTH), 60, "the inference worker", procs
        )
        for path in arrivals:
            push_frame(redis_conn, path.read_bytes(), path.name)
            time.sleep(0.2)  # one at a time: the inference worker sees each arrival
        delivered = {FEED_START + k * CADENCE for k in range(1, 12)}
        delivered |= {jumped + k * CADENCE for k in range(10)}
        expected = expected_issue_times(delivered)
        wait_until(
            lambda: (
                redis_conn.xlen(keys.FORECAST_EVENTS) >= len(expected)
                and redis_conn.xlen(keys.INCOMING_STREAM) == 0
                and redis_conn.xpending(keys.EVENTS_STREAM, keys.INFER_GROUP)["pending"] == 0
            ),
            60,
            "every complete issue time forecast",
            procs,
        )
        time.sleep(1.0)  # a late duplicate would show up here

    archived = sorted(p.name for p in (tmp_path / "data" / "archive").rglob("*.nc"))
    assert archived == sorted(p.name for p in (*f, *g))  # each distinct frame once
    counts = {k.decode(): int(v) for k, v in redis_conn.hgetall(keys.COUNTS).items()}
    assert counts == {"accepted": 21, "archived_only": 1, "quarantined:duplicate": 2}
    window = [int(s) for _, s in redis_conn.zrange(keys.window_times(SITE), 0, -1, withscores=True)]
    newest = [FEED_START + k * CADENCE for k in range(2, 12)]
    newest += [jumped + k * CADENCE for k in range(10)]
    assert window == [int(t.timestamp()) for t in newest]  # ordered, f[0] never entered

    issued = [
        parse_time(fields[b"issue_time"].decode())
        for _, fields in redis_conn.xrange(keys.FORECAST_EVENTS)
    ]
    assert len(issued) == len(set(issued))  # exactly once
    assert set(issued) == expected, sorted(expected - set(issued))
    assert len(expected) == 13  # f5..f11, and g4..g9 after the jump
    infer_counts = {k.decode(): int(v) for k, v in redis_conn.hgetall(keys.INFER_COUNTS).items()}
    assert infer_counts["issued:persistence"] == len(expected)
    assert infer_counts.get("refused:gap", 0) >= 1, infer_counts  # the jump, with its reason
