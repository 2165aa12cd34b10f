"""``GET /v1/publishing``: subscribers and their delivery counts, dead letters, missed cycles.

Read from Redis (`service.publish.state`), so any API replica shows what every publisher did.
No secret and no subscriber URL (it may carry a token) is ever in the response.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from service.api.context import ApiContext, context
from service.publish.state import OUTCOMES, PublishState
from service.publish.subscribers import payload_kind

router = APIRouter(prefix="/v1", tags=["publishing"])
Ctx = Annotated[ApiContext, Depends(context)]


class SubscriberDeliveries(BaseModel):
    name: str
    kind: str | None = Field(description="webhook or file; null: not configured on this replica.")
    payload: str | None = Field(description="summary or netcdf.")
    counts: dict[str, int] = Field(description="delivered, retried, dead_lettered, expired.")


class DeadLetterBody(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # from `service.publish.state.DeadLetter`

    delivery_id: str
    subscriber: str
    site: str = Field(validation_alias="site_id")
    method: str
    issue_time: datetime
    reason: str = Field(description="The last attempt's failure, e.g. HTTP 500 or timed out.")
    attempts: int
    dead_at: datetime


class MissedCycleBody(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # from `service.publish.state.MissedCycle`

    site: str = Field(validation_alias="site_id")
    cycle_time: datetime
    reason: str = Field(description="warming_up, gap, behind, internal_error or no_new_frame.")
    message: str
    latest_issue_time: datetime | None


class PublishingBody(BaseModel):
    mode: str = Field(description="cron or on_forecast (this replica's settings).")
    cron: str
    method: str
    sites: list[str] = Field(description="Published sites; empty: all.")
    publishers: list[str] = Field(description="Publisher replicas alive (heartbeat < 30 s).")
    subscribers: list[SubscriberDeliveries]
    dead_letter_count: int
    dead_letters: list[DeadLetterBody] = Field(description="Newest first, at most `limit`.")
    missed_cycles: dict[str, int] = Field(description="Site -> missed cron cycles.")
    recent_missed: list[MissedCycleBody] = Field(description="Newest first, at most `limit`.")


@router.get(
    "/publishing",
    response_model=PublishingBody,
    summary="Publishing: deliveries per subscriber, dead letters, missed cycles",
)
def publishing(
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=1000, description="Longest lists returned.")] = 100,
) -> PublishingBody:
    settings = ctx.settings
    state = PublishState(ctx.redis, settings.forecast_ttl_s)
    counts = state.counts()
    configured = {s.name: s for s in settings.subscribers}
    subscribers = [
        SubscriberDeliveries(
            name=name,
            kind=configured[name].kind if name in configured else None,
            payload=payload_kind(configured[name]) if name in configured else None,
            counts={o: counts.get(name, {}).get(o, 0) for o in OUTCOMES},
        )
        for name in sorted(set(configured) | set(counts))
    ]
    letters = [DeadLetterBody.model_validate(d) for d in state.dead_letters(limit)]
    return PublishingBody(
        mode=settings.publish_mode,
        cron=settings.publish_cron,
        method=settings.publish_method,
        sites=list(settings.publish_sites),
        publishers=[str(p["consumer"]) for p in state.live_publishers()],
        subscribers=subscribers,
        dead_letter_count=state.dead_letter_count(),
        dead_letters=letters,
        missed_cycles=state.missed_counts(),
        recent_missed=[MissedCycleBody.model_validate(m) for m in state.missed_log(limit)],
    )
