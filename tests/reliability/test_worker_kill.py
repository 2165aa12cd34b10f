"""An inference worker killed (SIGKILL) in the middle of its work.

Worker A (a real ``nowcast infer`` process) starts on a backlog of frame events for many
sites. Once it has forecast a few issue times and holds events it has read but not
acknowledged, it is frozen (SIGSTOP, so that what it holds is known) and killed (SIGKILL).
Worker B, started afterwards, must claim A's pending events once they have been idle for
``NOWCAST_INFER_CLAIM_IDLE_MS`` and finish the work: every (site, issue time) forecast exactly
once, by every method, none pending.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import redis

from core import keys
from core.frame import Frame
from ingest.window import WindowStore
from service.forecast_store import ForecastStore
from service.inference import InferenceWorker
from service.methods_runner import N_INPUTS, N_LEADS, MethodRunner
from service.verification_store import VerificationStore
from tests.reliability.procs import nowcast, nowcast_env, wait_until
from tests.service.helpers import service_settings

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
        checkpoints=json.dumps({"convlstm": str(small_checkpoint)}),
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


def test_a_worker_dying_between_storing_and_verifying_leaves_nothing_unverified(
    tmp_path, redis_conn, small_checkpoint
):
    """The narrow window of the kill above, made certain: the forecasts of an issue time are
    stored, then the worker dies before verifying them against the observations already in the
    window (those frames' own events were handled earlier, before the forecast existed). The
    event comes again (still pending) and must verify that backlog, once."""
    settings = service_settings(
        tmp_path / "data", small_checkpoint, methods=("persistence",), publish_method="persistence"
    )
    runner = MethodRunner(settings)
    window = WindowStore(redis_conn, 30, 10_000)
    for step in range(7):  # frames 5 and 6 arrived before issue 4 was forecast: no event left
        frame = Frame("v-1", START + timedelta(minutes=6 * step), _grey(step, 0), "n1-t")
        window.insert(frame, emit_event=step < 5)

    dying = InferenceWorker(settings, redis_conn, runner, consumer="w1")

    def die(_forecasts):
        raise redis.ConnectionError("killed between storing and verifying")

    dying.verifier.backlog = die  # type: ignore[method-assign]
    with pytest.raises(redis.ConnectionError):
        dying.process_once()
    issue = START + timedelta(minutes=24)
    assert ForecastStore(redis_conn, 3600).was_made("v-1", issue)  # stored, not acknowledged
    verification = VerificationStore(redis_conn, 3600)
    assert verification.summed(["v-1"], "persistence", N_LEADS).n_cells.sum() == 0

    InferenceWorker(settings, redis_conn, runner, consumer="w1").process_once()
    cells = verification.summed(["v-1"], "persistence", N_LEADS).n_cells
    # issue 4 against frames 5 and 6 (leads 1, 2: the backlog the dead worker left), and
    # issue 5 (completed by frames without events) against frame 6; each once
    assert cells.tolist() == [2 * 32 * 32, 32 * 32] + [0] * (N_LEADS - 2)
    assert redis_conn.xpending(keys.EVENTS_STREAM, keys.INFER_GROUP)["pending"] == 0
    InferenceWorker(settings, redis_conn, runner, consumer="w1").verifier.made("v-1", issue)
    assert verification.summed(["v-1"], "persistence", N_LEADS).n_cells.tolist() == cells.tolist()
