"""The inference status of each site, beside `service.forecast_store.ForecastStore`.

One Redis hash per site (`core.keys.infer_status`) says what the inference workers last did
there: the newest issue time forecast (and with which model, when), and the newest refusal
(issue time, reason, message). The workers write it through `StatusStore`; the API, the
publisher and the health checks read it as an `InferenceStatus`, never as raw fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis

from core import keys
from service.forecast import parse_time

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Refusal:
    """An issue time not forecast: ``reason`` warming_up, gap, behind or internal_error."""

    issue_time: datetime
    reason: str
    message: str


@dataclass(frozen=True)
class InferenceStatus:
    """What the workers last did for a site (all None before the first frame event)."""

    issue_time: datetime | None = None
    model_version: str | None = None
    made_at: str | None = None
    refusal: Refusal | None = None
    gap_resumed_epoch: str | None = None  # the gap reported last (counted once)

    def refusal_after(self, issue_time: datetime | None) -> Refusal | None:
        """The refusal if it concerns an issue time after ``issue_time`` (None: any)."""
        if self.refusal is None:
            return None
        if issue_time is not None and self.refusal.issue_time <= issue_time:
            return None
        return self.refusal


def parse_status(fields: dict[str, str]) -> InferenceStatus:
    """An `InferenceStatus` from the hash's decoded fields."""
    refusal = None
    if fields.get("refused_reason") and fields.get("refused_issue_time"):
        refusal = Refusal(
            parse_time(fields["refused_issue_time"]),
            fields["refused_reason"],
            fields.get("refused_message", ""),
        )
    issue = fields.get("issue_time")
    return InferenceStatus(
        issue_time=parse_time(issue) if issue else None,
        model_version=fields.get("model_version"),
        made_at=fields.get("made_at"),
        refusal=refusal,
        gap_resumed_epoch=fields.get("gap_resumed_epoch"),
    )


class StatusStore:
    """Reads and writes the per-site inference status hashes."""

    def __init__(self, connection: redis.Redis) -> None:
        self._redis = connection

    def get(self, site_id: str) -> InferenceStatus:
        raw = self._redis.hgetall(keys.infer_status(site_id))
        return parse_status({k.decode(): v.decode() for k, v in raw.items()})

    def record_issue(
        self, site_id: str, issue_time: datetime, model_version: str, made_at: datetime
    ) -> None:
        self._redis.hset(
            keys.infer_status(site_id),
            mapping={
                "issue_time": issue_time.strftime(_TIME_FORMAT),
                "model_version": model_version,
                "made_at": made_at.isoformat(),
            },
        )

    def record_refusal(
        self,
        site_id: str,
        issue_time: datetime,
        reason: str,
        message: str,
        counted: bool = True,
        gap_resumed_epoch: str | None = None,
    ) -> None:
        """The newest refusal; ``counted`` also adds one to ``refused:<reason>``."""
        pipe = self._redis.pipeline(transaction=False)
        if counted:
            pipe.hincrby(keys.INFER_COUNTS, f"refused:{reason}", 1)
        fields = {
            "refused_issue_time": issue_time.strftime(_TIME_FORMAT),
            "refused_reason": reason,
            "refused_message": message,
        }
        if gap_resumed_epoch is not None:
            fields["gap_resumed_epoch"] = gap_resumed_epoch
        pipe.hset(keys.infer_status(site_id), mapping=fields)
        pipe.execute()
