"""/v1/sites: the sites, their windows and what inference last did there."""

from __future__ import annotations

from fastapi import APIRouter

from core import keys
from service.api import schemas
from service.api.params import NOT_FOUND, Ctx, SiteId
from service.formats.graticule import graticule_lines

router = APIRouter(prefix="/v1", tags=["sites"])


@router.get("/sites", response_model=list[schemas.SiteStatus], summary="Sites and their windows")
def list_sites(ctx: Ctx) -> list[schemas.SiteStatus]:
    out = []
    for status in ctx.statuses():
        w = status.window
        infer = ctx.status.get(w.site_id)
        meta = ctx.redis.hget(keys.site_meta(w.site_id), "last_ingest_at")
        georef = ctx.site_georef(w.site_id)
        refusal = None
        if infer.refusal is not None:
            refusal = schemas.Refusal(
                issue_time=infer.refusal.issue_time,
                reason=infer.refusal.reason,
                message=infer.refusal.message,
            )
        out.append(
            schemas.SiteStatus(
                id=w.site_id,
                frames=w.count,
                oldest_frame=w.oldest,
                newest_frame=w.newest,
                cadence_min=w.cadence_min,
                gaps=w.missing,
                gap_count=w.missing_count,
                mask_version=status.mask_version,
                norm_version=status.norm_version,
                model_version=infer.model_version,
                last_issue_time=infer.issue_time,
                last_ingest_at=meta.decode() if meta else None,
                last_refusal=refusal,
                counts=status.counts,
                georeferenced=georef is not None,
                bbox=[round(v, 5) for v in georef.bounds_lonlat()] if georef else None,
            )
        )
    return out


@router.get(
    "/sites/{site}/graticule",
    response_model=schemas.Graticule,
    responses=NOT_FOUND,
    summary="Lon/lat lines over the site's grid, to draw on its maps",
)
def site_graticule(ctx: Ctx, site: SiteId) -> schemas.Graticule:
    """Meridians and parallels crossing the site's normalised grid, as polylines in grid
    coordinates; none for a site without georeference (``georeferenced`` false)."""
    ctx.require_site(site)
    georef = ctx.site_georef(site)
    if georef is None:
        return schemas.Graticule(
            site=site, georeferenced=False, shape=None, step_deg=None, lines=[]
        )
    step, lines = graticule_lines(georef)
    return schemas.Graticule(
        site=site,
        georeferenced=True,
        shape=[georef.ny, georef.nx],
        step_deg=step,
        lines=[
            schemas.GraticuleLine(axis=line.axis, value_deg=line.value_deg, pieces=line.pieces)
            for line in lines
        ],
    )
