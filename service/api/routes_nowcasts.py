"""/v1/sites/{site}/nowcast...: the latest or a past nowcast (JSON, CF-NetCDF, PNG, GIF) and
the series at one cell."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response

from service.api import schemas
from service.api.context import FORMAT_MEDIA_TYPES, ApiContext
from service.api.params import NOT_FOUND, Ctx, Format, MethodName, SiteId, negotiate_format, utc
from service.forecast import Forecast

router = APIRouter(prefix="/v1", tags=["nowcasts"])


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
    return _nowcast_response(ctx, forecast, negotiate_format(request, format), stride, frames)


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
    forecast = ctx.forecast(site, ctx.require_method(method), utc(issue_time))
    return _nowcast_response(ctx, forecast, negotiate_format(request, format), stride, frames)
