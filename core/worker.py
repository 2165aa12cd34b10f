"""The one base of the long-running workers (ingest, inference, publishing) and their stop.

`StreamWorker.run` loops until a stop is requested: a heartbeat (a Redis key with one TTL,
`HEARTBEAT_TTL_S`, that health checks and readiness read), then one pass of the worker's own
work (`work_once`). While a pass runs (an inference batch may take minutes) a beater thread
renews the heartbeat every third of its TTL, up to ``max_busy_s``: a pass stuck longer than
that stops beating, so a hung worker reads as dead while a busy one reads as alive. Redis going
away is logged and waited out with a doubling back-off
(`core.redis_conn.ReconnectBackoff`), never fatal. `read_group` reads a stream through a
consumer group the way every worker here does (pending entries, a dead consumer's claimed
after an idle time, then new ones; acknowledging is the worker's, after the work).

`install_stop_signals` gives every process the same stop: the first SIGTERM or SIGINT asks for
a warm stop (the item in hand finishes, nothing is lost) and, if the process is still running
``stop_timeout_s`` later, stops it cold; a second signal stops it cold at once. A cold stop is
`SystemExit` raised in the main thread, so ``finally`` blocks and context managers still run
(an embedded Redis is shut down, not orphaned).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType

import redis

from core.redis_conn import ReconnectBackoff
from core.settings import CoreSettings
from core.streams import Entry, ensure_group, group_entries

log = logging.getLogger(__name__)

HEARTBEAT_TTL_S = 30
"""A worker whose heartbeat key is older than this is taken for dead (health, readiness)."""


def default_consumer() -> str:
    """This process's consumer name: host and pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


class StreamWorker:
    """Base of a worker: `run` loops over `heartbeat` and `work_once` until `request_stop`.

    Subclasses give ``work_once(block_ms) -> int`` (one pass; may block up to ``block_ms``
    waiting for work; returns the items handled), ``heartbeat_key()`` and, optionally,
    ``heartbeat_state()`` (the key's value; default: the time).
    """

    name = "worker"
    heartbeat_ttl_s: float = HEARTBEAT_TTL_S
    max_busy_s: float = 20 * 60.0
    """Longest pass of `work_once` that the beater thread keeps the heartbeat alive for."""

    def __init__(
        self, connection: redis.Redis, settings: CoreSettings, consumer: str | None = None
    ) -> None:
        self.redis = connection
        self.settings = settings
        self.consumer = consumer or default_consumer()
        self.stop_event = threading.Event()
        self._busy_since: float | None = None  # time.monotonic() of the pass in hand

    # -- what a worker gives ---------------------------------------------------------------
    def work_once(self, block_ms: int) -> int:
        raise NotImplementedError

    def heartbeat_key(self) -> str:
        raise NotImplementedError

    def heartbeat_state(self) -> str:
        return str(time.time())

    # -- the loop --------------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def request_stop(self) -> None:
        """Finish the item in hand, then leave `run`."""
        self.stop_event.set()

    def heartbeat(self) -> None:
        ttl_ms = max(1, round(self.heartbeat_ttl_s * 1000))
        self.redis.set(self.heartbeat_key(), self.heartbeat_state(), px=ttl_ms)

    def run(self) -> None:
        """Heartbeat and work until `request_stop`; a Redis outage is waited out."""
        block_ms = int(self.settings.poll_interval_s * 1000)
        backoff = ReconnectBackoff(
            self.settings.poll_interval_s, self.settings.redis_reconnect_max_s
        )
        loop_done = threading.Event()
        beater = threading.Thread(
            target=self._beat_while_busy, args=(loop_done,), name=f"{self.name}-beat", daemon=True
        )
        beater.start()
        log.info("%s worker %s started", self.name, self.consumer)
        try:
            while not self.stopping:
                try:
                    self.heartbeat()
                    self._busy_since = time.monotonic()
                    self.work_once(block_ms)
                    backoff.reset()
                except redis.ConnectionError as exc:
                    delay_s = backoff.next_delay_s()
                    log.error("redis unavailable (%s); retrying in %.1fs", exc, delay_s)
                    self.stop_event.wait(delay_s)
                finally:
                    self._busy_since = None
        finally:
            loop_done.set()
            beater.join(timeout=5)
        log.info("%s worker %s stopped", self.name, self.consumer)

    def _beat_while_busy(self, loop_done: threading.Event) -> None:
        """Renew the heartbeat during a long pass, up to ``max_busy_s`` of it (a thread)."""
        while not loop_done.wait(self.heartbeat_ttl_s / 3):
            busy_since = self._busy_since
            if busy_since is None or time.monotonic() - busy_since > self.max_busy_s:
                continue
            with contextlib.suppress(redis.RedisError):  # the main loop reports an outage
                self.heartbeat()

    def read_group(
        self, stream: str, group: str, claim_idle_ms: int, count: int, block_ms: int | None
    ) -> list[Entry]:
        """This consumer's pending entries, a dead consumer's idle ones, then new ones."""
        ensure_group(self.redis, stream, group)
        return list(
            group_entries(self.redis, stream, group, self.consumer, claim_idle_ms, count, block_ms)
        )


def live_states(connection: redis.Redis, prefix: str) -> list[dict[str, object]]:
    """The JSON heartbeat states of the workers alive under ``prefix``, each with its
    ``consumer`` name, sorted by it."""
    out = []
    for key in connection.scan_iter(match=f"{prefix}:*"):
        value = connection.get(key)
        if value:
            state = json.loads(value)
            state["consumer"] = key.decode()[len(prefix) + 1 :]
            out.append(state)
    return sorted(out, key=lambda s: str(s["consumer"]))


def install_stop_signals(request_stop: Callable[[], None], stop_timeout_s: float) -> None:
    """SIGTERM/SIGINT: warm stop first (bounded by ``stop_timeout_s``), cold on the second.

    Call from the main thread of a process that runs one worker loop (or several, with
    ``request_stop`` stopping them all).
    """
    signals_seen = []

    def cold_stop_later() -> None:
        log.error("still running %.0f s after the stop signal: stopping now", stop_timeout_s)
        os.kill(os.getpid(), signal.SIGTERM)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        signals_seen.append(signum)
        if len(signals_seen) > 1:
            raise SystemExit(128 + signum)
        log.info("signal %d: finishing the item in hand, then stopping", signum)
        timer = threading.Timer(stop_timeout_s, cold_stop_later)
        timer.daemon = True
        timer.start()
        request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
