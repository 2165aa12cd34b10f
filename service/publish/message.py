"""What the publisher delivers: a job per (subscriber, site, issue time), its message, failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class DeliveryJob:
    """The nowcast of ``method`` for (site, issue time), owed to one subscriber.

    ``delivery_id`` is the idempotency key: one per (subscriber, site, issue time), stable
    across retries, replays, restarts and replicas; receivers get it to de-duplicate.
    """

    subscriber: str
    site_id: str
    method: str
    issue_time: datetime

    @property
    def issue_epoch(self) -> int:
        return int(self.issue_time.timestamp())

    @property
    def delivery_id(self) -> str:
        stamp = self.issue_time.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"{self.subscriber}:{self.site_id}:{stamp}"


@dataclass(frozen=True)
class Message:
    """The bytes sent for a job: ``body`` of ``content_type``; ``suffix`` names its file type."""

    job: DeliveryJob
    body: bytes
    content_type: str
    suffix: str


class DeliveryFailed(Exception):
    """One attempt failed. ``retryable``: another attempt may succeed (5xx, timeout, I/O).

    ``reason`` is safe to store and show: no secret, no URL (a URL may carry a token).
    """

    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
