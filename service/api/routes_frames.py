"""/v1/sites/{site}/frames...: the newest observed frames, and pushing a frame (with a key)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader
from starlette.requests import ClientDisconnect

from core import keys
from core.georef import GridGeoref
from ingest.ingestor import ArchiveUnavailable, Ingestor
from ingest.native import NativeStore
from service.api import schemas
from service.api.params import NOT_FOUND, Ctx, IsoDateTime, SiteId, utc
from service.formats.native import block_max, native_to_netcdf

log = logging.getLogger(__name__)
NETCDF_BODY = {"type": "string", "format": "binary"}
router = APIRouter(prefix="/v1", tags=["frames"])
CLIENT_CLOSED_REQUEST = 499
"""Status recorded (metrics) for an upload the client abandoned (nginx's convention): never
a 500, which the API error alert reads as the service's fault."""

# declares the X-API-Key scheme in the OpenAPI document; `ApiContext.check_api_key` checks it
ApiKeyHeader = Annotated[str | None, Security(APIKeyHeader(name="X-API-Key", auto_error=False))]


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


@router.get(
    "/sites/{site}/frames/native",
    response_model=schemas.NativeFrameBody,
    responses={
        **NOT_FOUND,
        200: {
            "content": {"application/x-netcdf": {"schema": {"type": "string", "format": "binary"}}}
        },
    },
    summary="The radar's own frame: its rain rate on its own grid, peaks and coverage kept",
)
def native_frame(
    ctx: Ctx,
    site: SiteId,
    valid_time: Annotated[
        IsoDateTime | None, Query(description="ISO 8601; default: the newest frame.")
    ] = None,
    format: Annotated[
        Literal["json", "netcdf"],
        Query(description="json: a summary and block maxima; netcdf: the whole grid (CF-1.8)."),
    ] = "json",
    max_cells: Annotated[
        int, Query(ge=10, le=1000, description="JSON: at most this many blocks a side.")
    ] = 200,
) -> Response | schemas.NativeFrameBody:
    """What the radar measured, on its grid and at its resolution (not the network's smoothed
    100 x 100 input): NaN/null where it did not see, 0 where it saw no rain."""
    ctx.require_site(site)
    natives = NativeStore(ctx.redis)
    wanted = utc(valid_time)
    frame = natives.newest(site) if wanted is None else natives.get(site, wanted)
    if frame is None:
        raise HTTPException(404, f"site {site} holds no radar frame valid at that time")
    if format == "netcdf":
        georef_json = ctx.redis.hget(keys.site_meta(site), "native_georef")
        georef = GridGeoref.from_json(georef_json) if georef_json else None
        body = native_to_netcdf(frame, georef)
        name = f"radar_{site}_{frame.valid_time:%Y%m%dT%H%MZ}.nc"
        return Response(
            body,
            media_type="application/x-netcdf",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    block = max(1, -(-max(frame.rain_mmh.shape) // max_cells))
    coarse = block_max(frame.rain_mmh, block)
    return schemas.NativeFrameBody(
        site=site,
        valid_time=frame.valid_time,
        shape=list(frame.rain_mmh.shape),
        covered_fraction=round(frame.covered_fraction, 6),
        max_rain_mmh=round(frame.max_rain_mmh(), 2),
        block_cells=block,
        frame=[[None if np.isnan(v) else round(float(v), 2) for v in row] for row in coarse],
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
    summary="Push one radar frame, CF-NetCDF or ODIM_H5 (needs X-API-Key)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The frame file's bytes. Its content is checked beyond this "
            "schema: an unreadable, malformed or implausible frame is quarantined with its "
            "reason (422), a duplicate or a conflicting one is 409.",
            "content": {
                media: {
                    "schema": {"type": "string", "format": "binary"},
                    # an example body, so that a client or a fuzzer can send one
                    "example": "CDF\u0001 (a CF-NetCDF or ODIM_H5 radar frame's bytes)",
                }
                for media in ("application/x-netcdf", "application/x-hdf5")
            },
        }
    },
)
async def push_frame(
    request: Request, ctx: Ctx, site: SiteId, _key: ApiKeyHeader = None
) -> schemas.FrameAccepted:
    ctx.check_api_key(request)
    limit = ctx.settings.max_frame_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"frame of {declared} bytes exceeds the limit of {limit}")
    body = bytearray()
    body_timeout_s = ctx.settings.http_body_timeout_s
    try:
        async with asyncio.timeout(body_timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise HTTPException(413, f"frame exceeds the limit of {limit} bytes")
    except TimeoutError:
        raise HTTPException(
            408, f"the frame did not arrive whole within {body_timeout_s:g} s"
        ) from None
    except ClientDisconnect:  # the client's doing, not an error of ours: nothing was taken
        log.info("upload for %s abandoned by the client after %d bytes", site, len(body))
        raise HTTPException(
            CLIENT_CLOSED_REQUEST, "the client left before the upload ended"
        ) from None
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
