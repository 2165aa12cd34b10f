"""/v1/sites/{site}/nowcast...: the latest or a past nowcast (JSON, CF-NetCDF, PNG, GIF) and
the series at one cell."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response

from service.api import schemas
from service.api.context import FORMAT_MEDIA_TYPES, FORMAT_SUFFIXES, ApiContext
from service.api.params import (
    NOT_FOUND,
    Ctx,
    Format,
    IsoDateTime,
    MethodName,
    SiteId,
    negotiate_format,
    utc,
)
from service.forecast import Forecast

router = APIRouter(prefix="/v1", tags=["nowcasts"])


def _nowcast_response(
    ctx: ApiContext,
    forecast: Forecast,
    fmt: str,
    stride: int,
    frames: bool,
    lead: int | None = None,
    product: str = "rain",
    threshold: float | None = None,
) -> Response:
    epoch = int(forecast.issue_time.timestamp())
    version = f"{forecast.site_id}-{forecast.method}-{epoch}-{fmt}-{stride}-{int(frames)}-{lead}"
    if product == "probability":
        version += f"-p{threshold}"
    headers = {
        "Cache-Control": "public, max-age=60",
        "ETag": f'"{version}"',
        "X-Model-Version": forecast.model_version,
    }
    if product == "probability":
        try:
            body = ctx.render_probability(
                forecast.site_id, forecast.method, epoch, fmt, threshold, stride, frames
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        media = FORMAT_MEDIA_TYPES[fmt]
        if fmt != "json":
            name = f"probability_{forecast.site_id}_{forecast.method}_"
            name += f"{forecast.issue_time:%Y%m%dT%H%MZ}.{FORMAT_SUFFIXES[fmt]}"
            headers["Content-Disposition"] = f'inline; filename="{name}"'
        return Response(body, media_type=media, headers=headers)
    if fmt != "json":
        if lead is not None and fmt != "geotiff":
            raise HTTPException(422, "lead= selects one lead of format=geotiff only")
        try:
            body = ctx.render(forecast.site_id, forecast.method, epoch, fmt, lead)
        except ValueError as exc:  # no georeference, or a lead the forecast has not
            raise HTTPException(422, str(exc)) from exc
        name = f"nowcast_{forecast.site_id}_{forecast.method}_{forecast.issue_time:%Y%m%dT%H%MZ}"
        headers["Content-Disposition"] = f'inline; filename="{name}.{FORMAT_SUFFIXES[fmt]}"'
        return Response(body, media_type=FORMAT_MEDIA_TYPES[fmt], headers=headers)
    body = ctx.render_json(forecast.site_id, forecast.method, epoch, stride, frames)
    return Response(body, media_type="application/json", headers=headers)


_FORMAT_DOC = (
    "json, netcdf (CF-1.8, ACDD-1.3), png (strip), gif (animation), geojson (rain areas per "
    "lead and threshold, lon/lat) or geotiff (Cloud-Optimized, a band per lead); else from "
    "Accept. geojson and geotiff need a georeferenced site."
)
_BINARY = {"schema": {"type": "string", "format": "binary"}}
NOWCAST_RESPONSES: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    200: {
        "model": schemas.NowcastBody,
        "description": "The nowcast in the format asked for (format= or Accept).",
        "content": {FORMAT_MEDIA_TYPES[fmt]: _BINARY for fmt in ("netcdf", "png", "gif", "geotiff")}
        | {FORMAT_MEDIA_TYPES["geojson"]: {"schema": {"type": "object"}}},
    },
}
LeadParam = Annotated[
    int | None, Query(ge=1, le=15, description="format=geotiff: only this lead (1-based).")
]
ProductParam = Annotated[
    Literal["rain", "probability"],
    Query(
        description="rain: the rain rate (a probabilistic method's ensemble mean); "
        "probability: a probabilistic method's (steps) probabilities of rain at or above "
        "threshold=, as json, netcdf, png or geojson (areas of 10, 50 and 90 %); with a "
        "deterministic method it is refused (422)."
    ),
]
ThresholdParam = Annotated[
    float | None,
    Query(
        gt=0,
        description="product=probability: the threshold in mm/h (0.5, 2, 5, 10 or 30); png "
        "and geojson need one, json and netcdf give all by default.",
    ),
]


@router.get(
    "/sites/{site}/nowcast/latest",
    responses=NOWCAST_RESPONSES,
    summary="The latest nowcast of a site",
)
def latest_nowcast(
    request: Request,
    ctx: Ctx,
    site: SiteId,
    method: MethodName = None,
    format: Annotated[Format | None, Query(description=_FORMAT_DOC)] = None,
    stride: Annotated[int, Query(ge=1, le=50, description="JSON: keep every n-th cell.")] = 1,
    frames: Annotated[bool, Query(description="JSON: include the frames.")] = True,
    lead: LeadParam = None,
    product: ProductParam = "rain",
    threshold: ThresholdParam = None,
) -> Response:
    forecast = ctx.forecast(site, ctx.require_method(method, site), None)
    fmt = negotiate_format(request, format)
    return _nowcast_response(ctx, forecast, fmt, stride, frames, lead, product, threshold)


@router.get(
    "/sites/{site}/nowcast/latest/point",
    response_model=schemas.PointSeries,
    responses=NOT_FOUND,
    summary="Rain-rate series of the latest nowcast at one grid cell (by row/col or lat/lon)",
    description="Give row and col, or lat and lon (a georeferenced site's nearest cell), not "
    "both and not one of a pair (422).",
)
def latest_point(
    ctx: Ctx,
    site: SiteId,
    row: Annotated[int | None, Query(ge=0, description="Grid row (0 = first row).")] = None,
    col: Annotated[int | None, Query(ge=0, description="Grid column.")] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90, description="Latitude, deg N.")] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180, description="Longitude, deg E.")] = None,
    method: MethodName = None,
) -> schemas.PointSeries:
    forecast = ctx.forecast(site, ctx.require_method(method, site), None)
    row, col = _cell(forecast, row, col, lat, lon)
    rain = forecast.conversion.rain_mmh(forecast.grey[:, row, col])
    cell_lat = cell_lon = None
    if forecast.georef is not None:
        lons, lats = forecast.georef.lonlat()
        cell_lat, cell_lon = round(float(lats[row, col]), 5), round(float(lons[row, col]), 5)
    return schemas.PointSeries(
        site=site,
        method=forecast.method,
        issue_time=forecast.issue_time,
        row=row,
        col=col,
        lat=cell_lat,
        lon=cell_lon,
        lead_minutes=forecast.lead_minutes,
        valid_times=forecast.valid_times,
        rain_mmh=[round(float(v), 4) for v in rain],
    )


def _cell(
    forecast: Forecast, row: int | None, col: int | None, lat: float | None, lon: float | None
) -> tuple[int, int]:
    """The grid cell asked for, by row/col or by lat/lon (nearest cell); 422 otherwise."""
    rows, cols = forecast.grey.shape[1:]
    by_index, by_place = (row, col) != (None, None), (lat, lon) != (None, None)
    if by_index == by_place or None in ((row, col) if by_index else (lat, lon)):
        raise HTTPException(422, "give either row and col, or lat and lon")
    if by_place:
        assert lat is not None and lon is not None
        if forecast.georef is None:
            raise HTTPException(
                422, f"site {forecast.site_id} has no georeference: ask by row and col"
            )
        cell = forecast.georef.cell_of(lon, lat)
        if cell is None:
            raise HTTPException(
                422, f"{lat:g} N {lon:g} E is outside site {forecast.site_id}'s grid"
            )
        return cell
    assert row is not None and col is not None
    if row >= rows or col >= cols:
        raise HTTPException(422, f"row/col must be inside the {rows} x {cols} grid")
    return row, col


@router.get(
    "/sites/{site}/nowcast/{issue_time}",
    responses=NOWCAST_RESPONSES,
    summary="A past nowcast, while it is kept",
)
def past_nowcast(
    request: Request,
    ctx: Ctx,
    site: SiteId,
    issue_time: IsoDateTime,
    method: MethodName = None,
    format: Annotated[Format | None, Query(description=_FORMAT_DOC)] = None,
    stride: Annotated[int, Query(ge=1, le=50)] = 1,
    frames: bool = True,
    lead: LeadParam = None,
    product: ProductParam = "rain",
    threshold: ThresholdParam = None,
) -> Response:
    forecast = ctx.forecast(site, ctx.require_method(method, site), utc(issue_time))
    fmt = negotiate_format(request, format)
    return _nowcast_response(ctx, forecast, fmt, stride, frames, lead, product, threshold)
