"""/v1/verification: live verification per lead and threshold, methods side by side."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from core.settings import SITE_ID_PATTERN
from model.methods import probabilistic_names
from service.api import schemas
from service.api.params import NOT_FOUND, Ctx, IsoDateTime, utc
from service.methods_runner import N_LEADS

router = APIRouter(prefix="/v1", tags=["verification"])


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
    since: Annotated[
        IsoDateTime | None,
        Query(description="Observations valid from (UTC), ISO 8601; not after until."),
    ] = None,
    until: Annotated[IsoDateTime | None, Query(description="... up to (UTC), ISO 8601.")] = None,
) -> schemas.VerificationBody:
    since, until = utc(since), utc(until)
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
    probabilistic = {
        name: schemas.ProbabilisticScores(
            **ctx.verification.summed_probability(sites, name, n_leads, since, until).scores()
        )
        for name in methods
        if name in probabilistic_names()
    }
    cadences = {ctx.cadence_min(s) for s in sites}
    cadence = next(iter(cadences)) if len(cadences) == 1 else None
    return schemas.VerificationBody(
        sites=sites,
        since=since,
        until=until,
        leads=list(range(1, n_leads + 1)),
        lead_minutes=[cadence * k for k in range(1, n_leads + 1)] if cadence else None,
        thresholds_mmh=list(ctx.thresholds()),
        methods=body,
        probabilistic=probabilistic,
    )
