"""HTTP request latency into the Prometheus histogram, as a plain ASGI middleware.

A plain ASGI wrapper rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware
runs each request through an extra task and memory streams, which cost 60 % of the
throughput of the latest-forecast route under load (docs/benchmarks.md, "API").
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class LatencyMiddleware:
    """Observes ``histogram{method, route, status}`` in seconds for every HTTP request.

    ``route`` is the route's path template (``/v1/sites/{site}``), "unmatched" when no route
    matched, so that the label's values stay few.
    """

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception escaping the app ends as a 500

        async def send_observing(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observing)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.histogram.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
