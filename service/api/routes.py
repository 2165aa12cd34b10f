"""The /v1 routes: sites, nowcasts (JSON, CF-NetCDF, PNG, GIF), points, frames, verification."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from ingest import keys
from ingest.ingestor import ArchiveUnavailable, Ingestor
from ingest.settings import SITE_ID_PATTERN
from service.api import schemas
from service.api.context import FORMAT_MEDIA_TYPES, ApiContext, context
from service.forecast import Forecast
from service.methods_runner import N_LEADS

router = APIRouter(prefix="/v1")

SiteId = Annotated[str, Path(pattern=SITE_ID_PATTERN, description="Radar site id.")]
MethodName = Annotated[
    str,
    Query(
        description="Nowcast method, one of those the service runs (NOWCAST_METHODS): convlstm, "
        "saconvlstm, fclstm, extrapolation, sprog, persistence"
    ),
]
Format = Literal["json", "netcdf", "png", "gif"]
Ctx = Annotated[ApiContext, Depends(context)]

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.ErrorBody, "description": "Unknown site or no forecast."}
}
_ACCEPT_FORMATS = {media: name for name, media in FORMAT_MEDIA_TYPES.items()}


def _utc(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _format(request: Request, fmt: Format | None) -> str:
    """``format=`` wins; else the first media type of the Accept header we serve; else JSON."""
    if fmt is not None:
        return fmt
    for part in request.headers.get("accept", "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in _ACCEPT_FORMATS:
            return _ACCEPT_FORMATS[media]
    return "json"


@router.get("/sites", response_model=list[schemas.SiteStatus], summary="Sites and their windows")
def list_sites(ctx: Ctx) -> list[schemas.SiteStatus]:
    out = []
    for status in ctx.statuses():
        w = status.window
        infer = ctx.redis.hgetall(keys.infer_status(w.site_id))
        fields = {k.decode(): v.decode() for k, v in infer.items()}
        meta = ctx.redis.hget(keys.site_meta(w.site_id), "last_ingest_at")
        refusal = None
        if fields.get("refused_reason"):
            refusal = schemas.Refusal(
                issue_time=fields["refused_issue_time"],
                reason=fields["refused_reason"],
                message=fields.get("refused_message", ""),
            )
        out.append(
            schemas.SiteStatus(
                id=w.site_id,
                frames=w.count,
                oldest_frame=w.oldest,
                newest_frame=w.newest,
                cadence_min=w.cadence_min,
                gaps=w.missing,
                mask_version=status.mask_version,
                norm_version=status.norm_version,
                model_version=fields.get("model_version"),
                last_issue_time=fields.get("issue_time"),
                last_ingest_at=meta.decode() if meta else None,
                last_refusal=refusal,
                counts=status.counts,
            )
        )
    return out


def _nowcast_response(
    ctx: ApiContext, forecast: Forecast, fmt: str, stride: int, frames: bool
) -> Response:
    epoch = int(forecast.issue_time.timestamp())
    headers = {
        "Cache-Control": "public, max-age=60",
        "ETag": f'"{forecast.site_id}-{forecast.method}-{epoch}-{fmt}-{stride}-{int(frames)}"',
        "X-Model-Version": forecast.model_version,
    }
    if fmt != "json":
        body = ctx.render(forecast.site_id, forecast.method, epoch, fmt)
        name = f"nowcast_{forecast.site_id}_{forecast.method}_{forecast.issue_time:%Y%m%dT%H%MZ}"
        suffix = {"netcdf": "nc", "png": "png", "gif": "gif"}[fmt]
        headers["Content-Disposition"] = f'inline; filename="{name}.{suffix}"'
        return Response(body, media_type=FORMAT_MEDIA_TYPES[fmt], headers=headers)
    body = ctx.render_json(forecast.site_id, forecast.method, epoch, stride, frames)
    return Response(body, media_type="application/json", headers=headers)


_FORMAT_DOC = "json, netcdf (CF-1.8), png (strip) or gif (animation); else from Accept."


@router.get(
    "/sites/{site}/nowcast/latest",
    responses={**NOT_FOUND, 200: {"model": schemas.NowcastBody}},
    summary="The latest nowcast of a site",
)
def latest_nowcast(
    request: Request,
    ctx: Ctx,
    site: SiteId,
    method: MethodName = "convlstm",
    format: Annotated[Format | None, Query(description=_FORMAT_DOC)] = None,
    stride: Annotated[int, Query(ge=1, le=50, description="JSON: keep every n-th cell.")] = 1,
    frames: Annotated[bool, Query(description="JSON: include the frames.")] = True,
) -> Response:
    forecast = ctx.forecast(site, ctx.require_method(method), None)
    return _nowcast_response(ctx, forecast, _format(request, format), stride, frames)


@router.get(
    "/sites/{site}/nowcast/latest/point",
    response_model=schemas.PointSeries,
    responses=NOT_FOUND,
    summary="Rain-rate series of the latest nowcast at one grid cell",
)
def latest_point(
    ctx: Ctx,
    site: SiteId,
    row: Annotated[int, Query(ge=0, description="Grid row (0 = first row).")],
    col: Annotated[int, Query(ge=0, description="Grid column.")],
    method: MethodName = "convlstm",
) -> schemas.PointSeries:
    forecast = ctx.forecast(site, ctx.require_method(method), None)
    rows, cols = forecast.grey.shape[1:]
    if row >= rows or col >= cols:
        raise HTTPException(422, f"row/col must be inside the {rows} x {cols} grid")
    rain = forecast.conversion.rain_mmh(forecast.grey[:, row, col])
    return schemas.PointSeries(
        site=site,
        method=forecast.method,
        issue_time=forecast.issue_time,
        row=row,
        col=col,
        lead_minutes=forecast.lead_minutes,
        valid_times=forecast.valid_times,
        rain_mmh=[round(float(v), 4) for v in rain],
    )


@router.get(
    "/sites/{site}/nowcast/{issue_time}",
    responses={**NOT_FOUND, 200: {"model": schemas.NowcastBody}},
    summary="A past nowcast, while it is kept",
)
def past_nowcast(
    request: Request,
    ctx: Ctx,
    site: SiteId,
    issue_time: datetime,
    method: MethodName = "convlstm",
    format: Annotated[Format | None, Query(description=_FORMAT_DOC)] = None,
    stride: Annotated[int, Query(ge=1, le=50)] = 1,
    frames: bool = True,
) -> Response:
    forecast = ctx.forecast(site, ctx.require_method(method), _utc(issue_time))
    return _nowcast_response(ctx, forecast, _format(request, format), stride, frames)


@router.get(
    "/sites/{site}/frames/latest",
    response_model=schemas.ObservedFrames,
    responses=NOT_FOUND,
    summary="The newest observed (normalised) frames in mm/h",
)
def latest_frames(
    ctx: Ctx,
    site: SiteId,
    n: Annotated[int, Query(ge=1, le=40)] = 5,
    stride: Annotated[int, Query(ge=1, le=50)] = 1,
) -> schemas.ObservedFrames:
    ctx.require_site(site)
    times, rain = ctx.observed_mmh(site, n)
    return schemas.ObservedFrames(
        site=site,
        valid_times=times,
        stride=stride,
        frames=np.round(rain[:, ::stride, ::stride], 3).tolist(),
    )


@router.post(
    "/sites/{site}/frames",
    status_code=201,
    response_model=schemas.FrameAccepted,
    responses={
        401: {"model": schemas.ErrorBody, "description": "Missing or invalid API key."},
        409: {"model": schemas.ErrorBody, "description": "Duplicate or conflicting frame."},
        413: {"model": schemas.ErrorBody, "description": "Frame larger than the limit."},
        422: {"model": schemas.ErrorBody, "description": "Frame quarantined, with the reason."},
        503: {"model": schemas.ErrorBody, "description": "Archive unavailable; retry."},
    },
    summary="Push one CF-NetCDF frame (needs X-API-Key)",
)
async def push_frame(request: Request, ctx: Ctx, site: SiteId) -> schemas.FrameAccepted:
    ctx.check_api_key(request)
    limit = ctx.settings.max_frame_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"frame of {declared} bytes exceeds the limit of {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"frame exceeds the limit of {limit} bytes")
    if not body:
        raise HTTPException(422, "empty body: send the NetCDF file's bytes")
    ingestor = Ingestor(ctx.settings, ctx.redis)
    try:
        result = await run_in_threadpool(ingestor.ingest_bytes, bytes(body), f"http:{site}", site)
    except ArchiveUnavailable as exc:
        raise HTTPException(503, f"{exc}; the frame was not accepted, retry later") from exc
    if result.outcome == "quarantined":
        code = 409 if result.reason and result.reason.value in ("duplicate", "conflict") else 422
        reason = result.reason.value if result.reason else "unknown"
        raise HTTPException(code, f"frame quarantined ({reason}): {result.message}")
    assert result.valid_time is not None and result.site_id is not None
    return schemas.FrameAccepted(
        outcome=result.outcome, site=result.site_id, valid_time=result.valid_time
    )


@router.get(
    "/verification",
    response_model=schemas.VerificationBody,
    responses=NOT_FOUND,
    summary="Live verification per lead and threshold, methods side by side",
)
def verification(
    ctx: Ctx,
    site: Annotated[str | None, Query(pattern=SITE_ID_PATTERN)] = None,
    method: Annotated[str | None, Query(description="One method; default: all.")] = None,
    since: Annotated[datetime | None, Query(description="Observations valid from (UTC).")] = None,
    until: Annotated[datetime | None, Query(description="... up to (UTC).")] = None,
) -> schemas.VerificationBody:
    since, until = _utc(since), _utc(until)
    if since and until and since > until:
        raise HTTPException(422, "since must not be after until")
    if site is not None:
        ctx.require_site(site)
    sites = [site] if site else ctx.site_ids()
    methods = [ctx.require_method(method)] if method else list(ctx.settings.methods)
    n_leads = N_LEADS
    body: dict[str, schemas.MethodScores] = {}
    for name in methods:
        scores = ctx.verification.summed(sites, name, n_leads, since, until).scores()
        body[name] = schemas.MethodScores(**scores)
    cadences = {ctx.window.cadence_min(s, ctx.settings.site(s).cadence_min) for s in sites}
    cadence = next(iter(cadences)) if len(cadences) == 1 else None
    return schemas.VerificationBody(
        sites=sites,
        since=since,
        until=until,
        leads=list(range(1, n_leads + 1)),
        lead_minutes=[cadence * k for k in range(1, n_leads + 1)] if cadence else None,
        thresholds_mmh=list(ctx.thresholds()),
        methods=body,
    )
