"""An inference worker killed (SIGKILL) in the middle of its work.

Worker A (a real ``nowcast infer`` process) starts on a backlog of frame events for many
sites. Once it has forecast a few issue times and holds events it has read but not
acknowledged, it is frozen (SIGSTOP, so that what it holds is known) and killed (SIGKILL).
Worker B, started afterwards, must claim A's pending events once they have been idle for
``NOWCAST_INFER_CLAIM_IDLE_MS`` and finish the work: every (site, issue time) forecast exactly
once, by every method, none pending.
"""

from __future__ import annotations

import signal
import socket
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ingest import keys
from ingest.frame import Frame
from ingest.window import WindowStore
from service.methods_runner import N_INPUTS
from tests.reliability.procs import nowcast, nowcast_env, wait_until

N_SITES = 6
N_FRAMES = 8
START = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)
METHODS = ("convlstm", "persistence")


def _grey(step: int, site: int, n: int = 32) -> np.ndarray:
    rows, cols = np.mgrid[0:n, 0:n]
    centre = 8 + step + site % 4
    return (0.7 * np.exp(-((rows - 14) ** 2 + (cols - centre) ** 2) / 18.0)).astype(np.float32)


def _pending_of(redis_conn, consumer: str) -> list[bytes]:
    entries = redis_conn.xpending_range(
        keys.EVENTS_STREAM, keys.INFER_GROUP, "-", "+", 1000, consumername=consumer
    )
    return [e["message_id"] for e in entries]


@pytest.mark.timeout(240)
def test_a_killed_workers_pending_events_are_claimed_and_each_issue_forecast_once(
    tmp_path, redis_conn, redis_url, small_checkpoint
):
    window = WindowStore(redis_conn, 30, 10_000)
    for step in range(N_FRAMES):
        for s in range(N_SITES):
            frame = Frame(f"k-{s}", START + timedelta(minutes=6 * step), _grey(step, s), "n1-t")
            assert window.insert(frame) == "inserted"
    expected = N_SITES * (N_FRAMES - (N_INPUTS - 1))
    env = nowcast_env(
        tmp_path / "data",
        redis_url,
        checkpoint=small_checkpoint,
        methods=f'["{METHODS[0]}", "{METHODS[1]}"]',
        infer_batch_max=1,
        infer_claim_idle_ms=1500,
    )
    with nowcast(["infer"], env, tmp_path / "infer-a.log") as a:
        victim = f"{socket.gethostname()}-{a.proc.pid}"
        held: list[bytes] = []
        deadline = time.monotonic() + 90
        while not held:  # freeze A while it holds read, unacknowledged events
            assert time.monotonic() < deadline and a.proc.poll() is None, a.log
            if redis_conn.xlen(keys.FORECAST_EVENTS) >= 3 and _pending_of(redis_conn, victim):
                a.proc.send_signal(signal.SIGSTOP)
                held = _pending_of(redis_conn, victim)
                if not held:
                    a.proc.send_signal(signal.SIGCONT)
            time.sleep(0.01)
        a.proc.kill()
        a.proc.wait(timeout=10)
    done_by_a = redis_conn.xlen(keys.FORECAST_EVENTS)
    assert done_by_a < expected  # A really died with work left

    with nowcast(["infer"], env, tmp_path / "infer-b.log") as b:
        wait_until(
            lambda: (
                redis_conn.xlen(keys.FORECAST_EVENTS) >= expected
                and redis_conn.xpending(keys.EVENTS_STREAM, keys.INFER_GROUP)["pending"] == 0
            ),
            120,
            "worker B to finish A's work",
            [b.proc],
        )
        time.sleep(1.0)  # a late duplicate would show up here
    assert "claimed" in b.log

    announced = [(f[b"site"], f[b"issue_time"]) for _, f in redis_conn.xrange(keys.FORECAST_EVENTS)]
    assert len(announced) == len(set(announced)) == expected
    counts = {k.decode(): int(v) for k, v in redis_conn.hgetall(keys.INFER_COUNTS).items()}
    for method in METHODS:
        assert counts[f"issued:{method}"] == expected, counts
    assert _pending_of(redis_conn, victim) == []  # B took over every event A held
    print(f" A held {len(held)} events when killed, after {done_by_a} of {expected} issues")
