"""One delivery: attempts with exponential back-off and full jitter, then a dead letter.

`Deliverer.deliver(job)` sends the nowcast of a job to its subscriber at most once per
(subscriber, site, issue time) (see `service.publish.state`): skipped when already delivered,
left alone while another publisher holds its lock ("busy": the caller tries again later), and
after the last failed attempt - or a failure no retry can mend (a 4xx) - written to the
dead-letter list, which only `Deliverer.replay` tries again.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from service.forecast import Forecast
from service.forecast_store import ForecastStore
from service.formats.identity import ProductIdentity
from service.publish.message import DeliveryFailed, DeliveryJob, Message
from service.publish.payload import build_message
from service.publish.state import DeadLetter, PublishState
from service.publish.subscribers import Subscriber

log = logging.getLogger(__name__)

Outcome = Literal[
    "delivered",  # the receiver accepted it now
    "already_delivered",  # an earlier run or another replica delivered it
    "busy",  # another publisher holds its lock (or ours expired): try later
    "dead_lettered",  # every attempt failed: in the dead-letter list now
    "held_dead_letter",  # in the dead-letter list already: only a replay tries it
    "interrupted",  # stop requested during a back-off: neither delivered nor dead-lettered
    "expired",  # the forecast is no longer kept: it cannot be delivered
    "unknown_subscriber",  # a dead letter for a subscriber no longer configured
]
FINAL_OUTCOMES: frozenset[str] = frozenset(
    {"delivered", "already_delivered", "dead_lettered", "held_dead_letter", "expired"}
)
_RENDERED_KEPT = 4  # NetCDF renderings kept (one per recent issue time)


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_attempts`` tries; before try k+1 a wait in [0, min(cap, base 2^(k-1))]."""

    max_attempts: int
    backoff_s: float
    backoff_max_s: float


def backoff_delay_s(
    failed_attempts: int, policy: RetryPolicy, uniform01: Callable[[], float]
) -> float:
    """Seconds to wait after ``failed_attempts`` (>= 1) failures: full jitter (AWS style)."""
    ceiling = min(policy.backoff_max_s, policy.backoff_s * 2.0 ** (failed_attempts - 1))
    return ceiling * uniform01()


class Deliverer:
    """Delivers jobs for one publisher; ``stop`` set cuts back-off waits short."""

    def __init__(
        self,
        state: PublishState,
        forecasts: ForecastStore,
        subscribers: dict[str, Subscriber],
        policy: RetryPolicy,
        lock_ttl_s: int,
        identity: ProductIdentity,
        stop: threading.Event,
        rng: random.Random | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.state = state
        self.forecasts = forecasts
        self.subscribers = subscribers
        self.policy = policy
        self.lock_ttl_s = lock_ttl_s
        self.identity = identity
        self.base_url = identity.url or ""
        self._stop = stop
        self._rng = rng or random.Random()  # jitter, not cryptography
        self._now = now
        self._rendered: OrderedDict[tuple[str, str, int], bytes] = OrderedDict()

    def deliver(self, job: DeliveryJob, replay: bool = False) -> Outcome:
        """Deliver ``job`` unless done or held (``replay``: a dead letter may be tried)."""
        subscriber = self.subscribers.get(job.subscriber)
        if subscriber is None:
            return "unknown_subscriber"
        if self.state.is_delivered(job):
            return "already_delivered"
        previous = self.state.dead_letter(job.delivery_id)
        if previous is not None and not replay:
            return "held_dead_letter"
        token = self.state.acquire(job, self.lock_ttl_s)
        if token is None:
            return "busy"
        try:
            if self.state.is_delivered(job):  # delivered while we were taking the lock
                return "already_delivered"
            forecast = self.forecasts.get(job.site_id, job.method, job.issue_time)
            if forecast is None:
                return self._expired(job, previous is not None)
            message = build_message(
                job, forecast, subscriber.payload, self.base_url, lambda: self._netcdf_of(forecast)
            )
            done_before = previous.attempts if previous else 0
            return self._attempts(subscriber, message, token, done_before)
        finally:
            self.state.release(job, token)

    def _attempts(
        self, subscriber: Subscriber, message: Message, token: str, done_before: int
    ) -> Outcome:
        job = message.job
        reason = "no attempt made"
        for attempt in range(1, self.policy.max_attempts + 1):
            if attempt > 1:
                self.state.count("retried", job.subscriber)
                if self._stop.wait(backoff_delay_s(attempt - 1, self.policy, self._rng.random)):
                    log.info("stop requested: %s left for a later run", job.delivery_id)
                    return "interrupted"
            if not self.state.extend(job, token, self.lock_ttl_s):
                log.warning("lost the lock of %s; left to its new holder", job.delivery_id)
                return "busy"
            try:
                detail = subscriber.send(message)
            except DeliveryFailed as exc:
                reason = exc.reason
                log.warning(
                    "delivery %s attempt %d/%d failed: %s",
                    job.delivery_id,
                    attempt,
                    self.policy.max_attempts,
                    reason,
                )
                if not exc.retryable:
                    break
                continue
            if not self.state.extend(job, token, self.lock_ttl_s):  # slower than the lock TTL
                log.warning(
                    "lock of %s expired during the attempt: it may be sent twice (same "
                    "delivery id); raise NOWCAST_PUBLISH_LOCK_TTL_S",
                    job.delivery_id,
                )
            self.state.mark_delivered(job)
            log.info("delivered %s (%s, attempt %d)", job.delivery_id, detail, attempt)
            return "delivered"
        letter = DeadLetter.of(job, reason, done_before + attempt, self._now())
        self.state.add_dead_letter(letter)
        log.error("dead letter %s after %d attempts: %s", job.delivery_id, attempt, reason)
        return "dead_lettered"

    def _expired(self, job: DeliveryJob, was_dead_letter: bool) -> Outcome:
        """The forecast is gone: count it; a dead letter of it can never succeed, drop it."""
        self.state.count("expired", job.subscriber)
        if was_dead_letter:
            self.state.remove_dead_letter(job.delivery_id)
        log.warning("cannot deliver %s: the forecast is no longer kept", job.delivery_id)
        return "expired"

    def replay(self) -> dict[str, int]:
        """Try every dead letter again (oldest first); outcome -> how many.

        A delivered letter leaves the list; a failed one stays with its new reason and count.
        """
        report: dict[str, int] = {}
        for letter in reversed(self.state.dead_letters()):
            if self._stop.is_set():
                break
            outcome = self.deliver(letter.job, replay=True)
            report[outcome] = report.get(outcome, 0) + 1
        return report

    def _netcdf_of(self, forecast: Forecast) -> bytes:
        """The forecast's CF-NetCDF, rendered once for all subscribers of an issue time."""
        from service.formats.netcdf import forecast_to_netcdf

        key = (forecast.site_id, forecast.method, int(forecast.issue_time.timestamp()))
        if key not in self._rendered:
            self._rendered[key] = forecast_to_netcdf(forecast, self.identity)
            while len(self._rendered) > _RENDERED_KEPT:
                self._rendered.popitem(last=False)
        return self._rendered[key]
