"""`core.worker`: the shared loop and the stop every worker process gets, in real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import redis

from core.settings import CoreSettings
from core.worker import HEARTBEAT_TTL_S, StreamWorker

# a process whose work never finishes: the warm stop cannot end it, only the timeout can
STUCK = textwrap.dedent(
    """
    import sys, time
    from core.worker import install_stop_signals
    stopped = []
    install_stop_signals(lambda: stopped.append(1), stop_timeout_s=float(sys.argv[1]))
    print("ready", flush=True)
    try:
        while True:
            time.sleep(0.05)
            if stopped and sys.argv[2] == "finish":
                print("warm stop: finished the item in hand", flush=True)
                break
    finally:
        print("cleanup ran", flush=True)
    """
)


def _start(*args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", STUCK, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def test_first_signal_stops_warm():
    process = _start("30", "finish")
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    assert "warm stop: finished the item in hand" in out and "cleanup ran" in out


def test_a_worker_still_busy_after_stop_timeout_is_stopped_cold_with_its_cleanup():
    process = _start("1", "stuck")
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 128 + signal.SIGTERM, out
    assert time.monotonic() - started >= 1.0
    assert "cleanup ran" in out  # SystemExit in the main thread: finally blocks still run


def test_a_second_signal_stops_at_once():
    process = _start("60", "stuck")
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 128 + signal.SIGINT, out
    assert "cleanup ran" in out


class _Counting(StreamWorker):
    name = "counting"

    def __init__(self, connection: redis.Redis, settings: CoreSettings) -> None:
        super().__init__(connection, settings, consumer="c1")
        self.passes = 0

    def heartbeat_key(self) -> str:
        return "test:health:c1"

    def work_once(self, block_ms: int) -> int:
        self.passes += 1
        self.stop_event.wait(block_ms / 1000)
        return 0


def test_the_loop_beats_works_and_stops_when_asked(redis_conn, tmp_path):
    settings = CoreSettings(data_dir=tmp_path, poll_interval_s=0.05)
    worker = _Counting(redis_conn, settings)
    thread = threading.Thread(target=worker.run)
    thread.start()
    deadline = time.monotonic() + 10
    while worker.passes < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.request_stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert worker.passes >= 3
    assert 0 < redis_conn.ttl("test:health:c1") <= HEARTBEAT_TTL_S


class _Busy(_Counting):
    """One pass takes ``pass_s`` seconds (an inference batch of minutes, shortened)."""

    heartbeat_ttl_s = 0.6

    def __init__(self, connection: redis.Redis, settings: CoreSettings, pass_s: float) -> None:
        super().__init__(connection, settings)
        self.pass_s = pass_s

    def work_once(self, block_ms: int) -> int:
        self.passes += 1
        self.stop_event.wait(self.pass_s)
        return 0


def _alive_samples(redis_conn, worker: StreamWorker, seconds: float) -> list[bool]:
    thread = threading.Thread(target=worker.run)
    thread.start()
    samples = []
    try:
        time.sleep(0.1)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            samples.append(redis_conn.exists("test:health:c1") == 1)
            time.sleep(0.1)
    finally:
        worker.request_stop()
        thread.join(timeout=10)
    assert not thread.is_alive()
    return samples


def test_the_heartbeat_stays_alive_through_a_pass_longer_than_its_ttl(redis_conn, tmp_path):
    """Issue 33, finding 5: a batch of 86-115 s against a 30 s TTL read as a dead worker."""
    worker = _Busy(redis_conn, CoreSettings(data_dir=tmp_path), pass_s=4 * _Busy.heartbeat_ttl_s)
    samples = _alive_samples(redis_conn, worker, seconds=2.0)
    assert worker.passes == 1 and len(samples) >= 10
    assert all(samples), samples


def test_a_pass_stuck_beyond_max_busy_stops_beating(redis_conn, tmp_path):
    worker = _Busy(redis_conn, CoreSettings(data_dir=tmp_path), pass_s=30.0)
    worker.max_busy_s = 0.5
    samples = _alive_samples(redis_conn, worker, seconds=2.5)
    assert samples[0] and not samples[-1]  # alive at first, dead once stuck too long
