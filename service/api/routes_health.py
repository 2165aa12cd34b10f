"""Health, readiness, /metrics and the operator dashboard at /."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

import redis
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client.registry import Collector

from core import keys
from core.worker import HEARTBEAT_TTL_S, live_states
from service.api import schemas
from service.api.context import ApiContext, context
from service.metrics import RedisStateCollector, exposition
from service.ops_metrics import OpsCollector
from service.verification_metrics import VerificationCollector

router = APIRouter()


@router.get(
    "/healthz", response_model=schemas.HealthBody, tags=["health"], summary="The process is alive"
)
def healthz() -> schemas.HealthBody:
    return schemas.HealthBody(status="ok")


@router.get(
    "/readyz",
    response_model=schemas.Readiness,
    responses={503: {"model": schemas.Readiness}},
    tags=["health"],
    summary="Redis reachable, model loaded, a window fresh",
)
def readyz(request: Request) -> JSONResponse:
    state = readiness(context(request))
    return JSONResponse(state.model_dump(), status_code=200 if state.ready else 503)


@router.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=Response)
def prometheus_metrics(request: Request) -> Response:
    collectors: list[Collector] = request.app.state.collectors
    body, content_type = exposition(*collectors)
    return Response(body, media_type=content_type)


@router.get(
    "/v1/colour-scale",
    response_model=schemas.ColourScale,
    tags=["maps"],
    summary="The rain-rate colour scale of the maps (PNG, GIF and the dashboard)",
)
def colour_scale() -> schemas.ColourScale:
    from service.formats.png import colour_steps

    return schemas.ColourScale(
        source="pysteps radar colour scale (intensity, mm/h)",
        steps=[schemas.ColourStep(from_mmh=low, colour=hex_) for low, hex_ in colour_steps()],
        no_data="#d3d3d3",
    )


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard() -> HTMLResponse:
    page = resources.files("service").joinpath("static/dashboard.html").read_text("utf-8")
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


def metrics_collectors(ctx: ApiContext) -> list[Collector]:
    """The shared-state collectors of /metrics over ``ctx``'s Redis: the service's state and
    what the alert rules read."""
    methods = tuple(ctx.settings.methods)
    return [
        RedisStateCollector(ctx.redis, methods, tuple(s.name for s in ctx.settings.subscribers)),
        OpsCollector(ctx.redis, ctx.window, ctx.verification, methods),
        VerificationCollector(ctx.verification, ctx.site_ids, ctx.cadence_min, methods),
    ]


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
    workers = [w for w in live_states(ctx.redis, keys.INFER_HEALTH) if w.get("model_version")]
    checks["model_loaded"] = bool(workers)
    detail["model_loaded"] = (
        ", ".join(sorted({str(w["model_version"]) for w in workers}))
        if workers
        else f"no inference worker with a loaded model has reported in the last {HEARTBEAT_TTL_S} s"
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
