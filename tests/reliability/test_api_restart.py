"""The API killed (SIGKILL) and restarted under load: clients see errors only while it is down.

A real ``nowcast serve`` process answers reader threads (sites, latest nowcast, verification)
on loopback. It is killed with SIGKILL mid-load, and a new one started on the same port. Every
request must either succeed (200) or fail to connect; a failure must overlap the time from the
kill to the moment the new process answered its health check; no request may get a 5xx.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
import pytest

from tests.reliability.procs import nowcast, nowcast_env, wait_healthy, wait_until
from tests.service.live_server import free_port
from tests.service.publish_helpers import issue, store_forecast

PATHS = (
    "/v1/sites",
    "/v1/sites/site-a/nowcast/latest?frames=false",
    "/v1/sites/site-a/nowcast/latest?format=png",
    "/v1/verification",
)


@dataclass(frozen=True)
class Outcome:
    started: float
    ended: float
    status: int | None  # None: no answer (refused, reset)


def _reader(base: str, stop: threading.Event, out: list[Outcome], offset: int) -> None:
    k = offset
    while not stop.is_set():
        started = time.monotonic()
        try:
            status: int | None = httpx.get(base + PATHS[k % len(PATHS)], timeout=10).status_code
        except httpx.TransportError:
            status = None
            time.sleep(0.02)  # a refused connection returns at once: do not spin
        out.append(Outcome(started, time.monotonic(), status))
        k += 1


def _stop_readers(stop: threading.Event, readers: list[threading.Thread]) -> None:
    stop.set()
    for reader in readers:
        if reader.is_alive():
            reader.join(timeout=15)


@pytest.mark.long
@pytest.mark.timeout(180)
def test_api_killed_under_load_fails_requests_only_while_down(tmp_path, redis_conn, redis_url):
    for step in range(3):
        store_forecast(redis_conn, "site-a", issue(step), seed=step)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = nowcast_env(tmp_path / "data", redis_url)
    outcomes: list[Outcome] = []
    stop = threading.Event()
    readers = [
        threading.Thread(target=_reader, args=(base, stop, outcomes, i), daemon=True)
        for i in range(3)
    ]
    try:
        with nowcast(["serve", "--port", str(port)], env, tmp_path / "serve-1.log") as first:
            wait_healthy(base, 60, first.proc)
            for reader in readers:
                reader.start()
            wait_until(lambda: len(outcomes) >= 60, 60, "load on the first API", [first.proc])
            killed_at = time.monotonic()
            first.proc.kill()
            first.proc.wait(timeout=10)
        time.sleep(0.5)  # down: requests keep coming
        with nowcast(["serve", "--port", str(port)], env, tmp_path / "serve-2.log") as second:
            wait_healthy(base, 60, second.proc)
            up_at = time.monotonic()
            served = len(outcomes)
            wait_until(lambda: len(outcomes) >= served + 60, 60, "load on the second API")
            _stop_readers(stop, readers)  # before this server stops
    finally:
        _stop_readers(stop, readers)

    statuses = {o.status for o in outcomes}
    assert statuses <= {200, None}, statuses  # no 5xx, no 4xx: only answers or no answer
    failed = [o for o in outcomes if o.status is None]
    assert failed  # the outage was seen by the clients
    for o in failed:  # each failure overlaps [kill, back up]
        assert o.ended >= killed_at and o.started <= up_at, (o, killed_at, up_at)
    assert sum(o.status == 200 and o.ended < killed_at for o in outcomes) >= 50
    assert sum(o.status == 200 and o.started > up_at for o in outcomes) >= 50
    print(
        f" {len(outcomes)} requests, {len(failed)} failed while down "
        f"({up_at - killed_at:.1f} s from kill to the new process answering)"
    )
