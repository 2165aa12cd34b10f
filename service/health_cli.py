"""``nowcast health TARGET``: exit 0 when the process of this container is healthy, else 1.

For container health checks (the Dockerfile's HEALTHCHECK, ``docker-compose.yml``). Each target
asks the process's own signal:

- ``api``: ``GET /healthz`` on the local port (``--ready``: ``/readyz``: Redis reachable, a
  worker with a loaded model alive, a window fresh);
- ``ingest``, ``infer``, ``publish``: the heartbeat key (TTL 30 s) that the worker refreshes in
  Redis while its loop runs, of a worker on *this* host: every worker names itself
  ``<hostname>-<pid>``, so each replica of a scaled service checks its own process.

One line on stdout says why; ``docker inspect`` shows it.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import redis
import typer

from core import keys
from service.settings import Settings


class Target(StrEnum):
    api = "api"
    ingest = "ingest"
    infer = "infer"
    publish = "publish"


class Unhealthy(Exception):
    """The check failed; the message says why."""


@dataclass(frozen=True)
class Probe:
    settings: Settings
    port: int
    ready: bool
    timeout_s: float
    host: str


def _api(probe: Probe) -> str:
    path = "/readyz" if probe.ready else "/healthz"
    url = f"http://127.0.0.1:{probe.port}{path}"
    connection = http.client.HTTPConnection("127.0.0.1", probe.port, timeout=probe.timeout_s)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read(300).decode(errors="replace")
    except OSError as exc:
        raise Unhealthy(f"{url}: {exc}") from None
    finally:
        connection.close()
    if response.status != 200:
        raise Unhealthy(f"{url}: {response.status} {body}")
    return f"{url}: 200"


def _heartbeat_of(prefix: str, worker: str) -> Callable[[Probe], str]:
    """A check that a heartbeat key ``<prefix>:<this host>-<pid>`` is alive."""

    def check(probe: Probe) -> str:
        url = probe.settings.redis_url
        if not url:
            raise Unhealthy(f"{worker}: REDIS_URL is not set (the worker's Redis is unknown)")
        connection = redis.Redis.from_url(
            url, socket_connect_timeout=probe.timeout_s, socket_timeout=probe.timeout_s
        )
        pattern = f"{prefix}:{probe.host}-*"
        try:
            alive = sorted(k.decode() for k in connection.scan_iter(match=pattern))
        except redis.RedisError as exc:
            raise Unhealthy(f"{worker}: Redis unreachable ({type(exc).__name__})") from None
        finally:
            connection.close()
        if not alive:
            raise Unhealthy(f"{worker}: no heartbeat from {probe.host} in the last 30 s")
        return f"{worker} alive: {', '.join(k[len(prefix) + 1 :] for k in alive)}"

    return check


_CHECKS: dict[Target, Callable[[Probe], str]] = {
    Target.api: _api,
    Target.ingest: _heartbeat_of(keys.HEALTH, "ingest worker"),
    Target.infer: _heartbeat_of(keys.INFER_HEALTH, "inference worker"),
    Target.publish: _heartbeat_of(keys.PUBLISH_HEALTH, "publisher"),
}


def health(
    target: Annotated[Target, typer.Argument(help="The process to check.")],
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="api: default NOWCAST_HTTP_PORT."),
    ] = None,
    ready: Annotated[
        bool, typer.Option("--ready", help="api: ask /readyz instead of /healthz.")
    ] = False,
    timeout_s: Annotated[float, typer.Option("--timeout", min=0.1, max=60.0)] = 5.0,
) -> None:
    """Exit 0 when the process in this container is healthy, 1 if not (for health checks)."""
    from service.settings import get_settings

    try:
        settings = get_settings()
    except ValueError as exc:
        typer.echo(f"unhealthy: settings refused: {exc}")
        raise typer.Exit(1) from None
    probe = Probe(settings, port or settings.http_port, ready, timeout_s, socket.gethostname())
    try:
        typer.echo(f"ok: {_CHECKS[target](probe)}")
    except Unhealthy as exc:
        typer.echo(f"unhealthy: {exc}")
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command("health")(health)
