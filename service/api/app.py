"""The FastAPI application: /v1 routes, health and readiness, /metrics and the dashboard at /.

``create_app(settings, connection)`` builds it around a Redis connection; nothing happens at
import time. ``nowcast serve`` runs it with uvicorn.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import redis
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest import keys
from ingest.settings import Settings
from service.api import routes, routes_publishing, schemas
from service.api.context import ApiContext
from service.api.latency import LatencyMiddleware
from service.inference import live_workers
from service.methods_runner import N_LEADS
from service.metrics import RedisStateCollector, exposition, process_metrics

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"


def _scores_for_metrics(ctx: ApiContext, method: str) -> dict[str, Any] | None:
    sites = ctx.site_ids()
    if not sites:
        return None
    acc = ctx.verification.summed(sites, method, N_LEADS)
    if not acc.n_cells.any():
        return None
    scores = acc.scores()
    cadences = {ctx.window.cadence_min(s, ctx.settings.site(s).cadence_min) for s in sites}
    cadence = next(iter(cadences)) if len(cadences) == 1 and None not in cadences else None
    scores["lead_minutes"] = [(cadence * k if cadence else float(k)) for k in range(1, N_LEADS + 1)]
    return scores


def readiness(ctx: ApiContext) -> schemas.Readiness:
    """Redis reachable, an inference worker with a loaded model alive, a window fresh."""
    checks: dict[str, bool] = {}
    detail: dict[str, str] = {}
    try:
        ctx.redis.ping()
        checks["redis"] = True
    except redis.RedisError as exc:
        checks.update(redis=False, model_loaded=False, window_fresh=False)
        detail["redis"] = f"unreachable: {type(exc).__name__}"
        return schemas.Readiness(ready=False, checks=checks, detail=detail)
    workers = [w for w in live_workers(ctx.redis) if w.get("model_version")]
    checks["model_loaded"] = bool(workers)
    detail["model_loaded"] = (
        ", ".join(sorted({str(w["model_version"]) for w in workers}))
        if workers
        else "no inference worker with a loaded model has reported in the last 30 s"
    )
    now = datetime.now(UTC).timestamp()
    ages = []
    for site in ctx.site_ids():
        stamp = ctx.redis.hget(keys.site_meta(site), "last_ingest_at")
        if stamp:
            ages.append(now - datetime.fromisoformat(stamp.decode()).timestamp())
    limit = ctx.settings.ready_max_ingest_age_s
    checks["window_fresh"] = bool(ages) and min(ages) <= limit
    detail["window_fresh"] = (
        f"newest ingest {min(ages):.0f} s ago (limit {limit:g} s)" if ages else "no frame yet"
    )
    return schemas.Readiness(ready=all(checks.values()), checks=checks, detail=detail)


def validation_message(exc: RequestValidationError) -> str:
    """``query.stride: Input should be greater than 0; ...``: where and what, never the value
    sent (it could be a secret put in the wrong place)."""
    parts = [
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
        for error in exc.errors()
    ]
    return "; ".join(parts) or "invalid request"


def create_app(settings: Settings, connection: redis.Redis) -> FastAPI:
    """The API around one Redis connection (thread-safe pool)."""
    # /docs and /redoc load Swagger UI and ReDoc from the fastapi-offline package's own
    # files (under /static-offline-docs), never from a CDN: the service works without network
    app = FastAPIOffline(
        title="Precipitation nowcasting service",
        version=API_VERSION,
        description=(
            "ConvLSTM radar nowcasts (5 frames in, 15 out, 6-minute cadence) with live "
            "verification against persistence, optical-flow extrapolation and S-PROG."
        ),
    )
    ctx = ApiContext(settings, connection)
    app.state.ctx = ctx
    # every error body is {"detail": "<words>"}, bad parameters included (see `bad_request`)
    bad_parameters: dict[int | str, dict[str, Any]] = {
        422: {"model": schemas.ErrorBody, "description": "Bad parameters."}
    }
    app.include_router(routes.router, responses=bad_parameters)
    app.include_router(routes_publishing.router, responses=bad_parameters)
    collector = RedisStateCollector(
        connection, lambda m: _scores_for_metrics(ctx, m), tuple(settings.methods)
    )
    metrics = process_metrics()

    app.add_middleware(LatencyMiddleware, histogram=metrics.http_latency)

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

    @app.get("/healthz", summary="The process is alive")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=schemas.Readiness,
        responses={503: {"model": schemas.Readiness}},
        summary="Redis reachable, model loaded, a window fresh",
    )
    def readyz() -> JSONResponse:
        state = readiness(ctx)
        return JSONResponse(state.model_dump(), status_code=200 if state.ready else 503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def prometheus_metrics() -> Response:
        body, content_type = exposition(collector)
        return Response(body, media_type=content_type)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        page = resources.files("service").joinpath("static/dashboard.html").read_text("utf-8")
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    return app


def app_from_environment() -> FastAPI:
    """uvicorn factory for several worker processes: settings from the environment.

    Each worker process connects to ``REDIS_URL`` itself (``nowcast serve --workers N`` sets
    it to the embedded server's socket when none is configured).
    """
    from ingest.redis_conn import connect
    from ingest.settings import get_settings

    settings = get_settings()
    if not settings.redis_url:
        raise RuntimeError("several API workers need REDIS_URL (a shared Redis server)")
    connection = connect(
        settings.redis_url, settings.redis_connect_tries, settings.redis_connect_backoff_s
    )
    app = create_app(settings, connection)
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
