"""The FastAPI application: one router per resource (sites, nowcasts, frames, verification,
publishing, health with /metrics and the dashboard at /).

``create_app(settings, connection)`` builds it around a Redis connection; nothing happens at
import time. ``nowcast serve`` runs it with uvicorn.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from service.api import (
    routes_frames,
    routes_health,
    routes_nowcasts,
    routes_publishing,
    routes_sites,
    routes_verification,
    schemas,
    slow_clients,
)
from service.api.context import ApiContext
from service.api.latency import LatencyMiddleware
from service.metrics import process_metrics
from service.settings import Settings

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"


class DashboardFiles(StaticFiles):
    """The dashboard's static files, revalidated on every load (``no-cache`` with their ETag),
    so a page never runs the scripts of an older release."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        return response


def _openapi_with_methods(app: FastAPI, methods: tuple[str, ...]) -> dict[str, Any]:
    """The OpenAPI document with every ``method`` parameter an enum of the served methods."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        for path in schema["paths"].values():
            for operation in path.values():
                for parameter in operation.get("parameters", []):
                    if parameter["name"] == "method":
                        parameter["schema"] = {"type": "string", "enum": list(methods)}
        app.openapi_schema = schema
    return app.openapi_schema


def validation_message(exc: RequestValidationError) -> str:
    """``query.stride: Input should be greater than 0; ...``: where and what, never the value
    sent (it could be a secret put in the wrong place)."""
    parts = [
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
        for error in exc.errors()
    ]
    return "; ".join(parts) or "invalid request"


def create_app(
    settings: Settings, connection: redis.Redis, owns_connection: bool = False
) -> FastAPI:
    """The API around one Redis connection (thread-safe pool).

    ``owns_connection``: the app closes the connection when it shuts down (its lifespan);
    otherwise whoever opened it closes it (``nowcast serve``, the demo, tests).
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_connection:
            connection.close()
            log.info("redis connection closed")

    # /docs and /redoc load Swagger UI and ReDoc from the fastapi-offline package's own
    # files (under /static-offline-docs), never from a CDN: the service works without network
    app = FastAPIOffline(
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,  # operationId: the handler's name
        title="Precipitation nowcasting service",
        version=API_VERSION,
        description=(
            "ConvLSTM radar nowcasts (5 frames in, 15 out, 6-minute cadence) with live "
            "verification against persistence, optical-flow extrapolation and S-PROG."
        ),
    )
    ctx = ApiContext(settings, connection)
    app.state.ctx = ctx
    app.state.collectors = routes_health.metrics_collectors(ctx)
    # every error body is {"detail": "<words>"}, bad parameters included (see `bad_request`)
    bad_parameters: dict[int | str, dict[str, Any]] = {
        422: {"model": schemas.ErrorBody, "description": "Bad parameters."}
    }
    for module in (
        routes_sites,
        routes_nowcasts,
        routes_frames,
        routes_verification,
        routes_publishing,
    ):
        app.include_router(module.router, responses=bad_parameters)
    app.include_router(routes_health.router)
    # the dashboard's scripts and styles (GET / is its page), from the installed package
    app.mount("/static/dashboard", DashboardFiles(packages=[("service", "static/dashboard")]))
    app.add_middleware(LatencyMiddleware, histogram=process_metrics().http_latency)
    slow_clients.configure(settings.http_header_timeout_s)
    app.openapi = partial(_openapi_with_methods, app, tuple(settings.methods))  # type: ignore[method-assign]

    @app.exception_handler(redis.RedisError)
    async def redis_down(_request: Request, exc: redis.RedisError) -> JSONResponse:
        log.error("redis error: %s", type(exc).__name__)
        return JSONResponse({"detail": "the data store is unavailable; retry"}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    return app


def app_from_environment() -> FastAPI:
    """uvicorn factory for several worker processes: settings from the environment.

    Each worker process connects to ``REDIS_URL`` itself (``nowcast serve --workers N`` sets
    it to the embedded server's socket when none is configured).
    """
    from core.redis_conn import connect
    from service.settings import get_settings

    settings = get_settings()
    if not settings.redis_url:
        raise RuntimeError("several API workers need REDIS_URL (a shared Redis server)")
    connection = connect(
        settings.redis_url, settings.redis_connect_tries, settings.redis_connect_backoff_s
    )
    app = create_app(settings, connection, owns_connection=True)
    freeze_startup_heap()
    return app


def freeze_startup_heap() -> None:
    """Load the renderers now, then hide every object alive from the garbage collector.

    A full collection walks the ~175,000 objects of the imported libraries (numpy, xarray,
    pydantic, FastAPI ...) in about 120 ms on a 2-core machine, a pause every request in
    flight waits for: it was the API's p99 under load (docs/benchmarks.md, "API").
    ``gc.freeze`` moves them to a permanent generation; objects made later are collected as
    usual. For serving processes only (``nowcast serve``), after the app is built.
    """
    import gc

    import service.formats.netcdf
    import service.formats.png  # noqa: F401

    gc.collect()
    gc.freeze()
