"""What the /v1 routers share: path and query parameters, the context, error responses."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request
from pydantic import BeforeValidator

from core.settings import SITE_ID_PATTERN
from service.api import schemas
from service.api.context import FORMAT_MEDIA_TYPES, ApiContext, context

SiteId = Annotated[str, Path(pattern=SITE_ID_PATTERN, description="Radar site id.")]
MethodName = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$",
        description="Nowcast method, one of those the service runs (NOWCAST_METHODS; "
        "GET /v1/verification lists them); none: the site's default_method "
        "(NOWCAST_SITES), else convlstm",
    ),
]
Format = Literal["json", "netcdf", "png", "gif", "geojson", "geotiff"]
Ctx = Annotated[ApiContext, Depends(context)]

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.ErrorBody, "description": "Unknown site or no forecast."}
}
_ACCEPT_FORMATS = {
    **{media.split(";")[0]: name for name, media in FORMAT_MEDIA_TYPES.items()},
    "image/tiff": "geotiff",
    "image/geotiff": "geotiff",
}


ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_date_time(value: object) -> object:
    """Only an ISO 8601 date-time, as the schema says (pydantic alone reads ``0.5`` as a Unix
    time)."""
    if isinstance(value, str) and not ISO_DATE_TIME.match(value):
        raise ValueError("an ISO 8601 date-time is needed, e.g. 2026-01-01T00:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_date_time)]
"""A query parameter's date-time, refused unless written as ISO 8601."""


def utc(t: datetime | None) -> datetime | None:
    """``t`` in UTC; a naive time is taken as UTC."""
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def negotiate_format(request: Request, fmt: Format | None) -> str:
    """``format=`` wins; else the first media type of the Accept header we serve; else JSON."""
    if fmt is not None:
        return fmt
    for part in request.headers.get("accept", "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in _ACCEPT_FORMATS:
            return _ACCEPT_FORMATS[media]
    return "json"
