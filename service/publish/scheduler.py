"""The publisher (``nowcast publish``): which nowcasts go out, when, and what was missed.

Two modes (``publish_mode``):
- ``cron``: at each tick of ``publish_cron`` (UTC) the latest nowcast of every published site
  goes to every subscriber. A site with no forecast newer than at its previous cycle (a radar
  gap, warming up) is a **missed cycle**: logged, counted in Redis, shown by the API and the
  metrics, with the inference worker's reason. One replica per (site, cycle) makes that check.
- ``on_forecast``: each stored issue time, read from the stream ``nowcast:events:forecasts``
  through the consumer group ``publish`` (entries of a dead replica are claimed with
  XAUTOCLAIM); an entry is acknowledged once each of its deliveries is final.
Several replicas may run in either mode: `service.publish.delivery` makes each delivery once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import redis
from croniter import croniter

from core import keys
from core.streams import ensure_group
from core.worker import StreamWorker
from ingest.window import WindowStore
from service.forecast import parse_time
from service.forecast_store import ForecastStore
from service.formats.identity import ProductIdentity
from service.publish.delivery import FINAL_OUTCOMES, Deliverer, Outcome, RetryPolicy
from service.publish.message import DeliveryJob
from service.publish.settings import PublishSettings
from service.publish.state import MissedCycle, PublishState
from service.publish.subscribers import Subscriber
from service.status_store import InferenceStatus, StatusStore

log = logging.getLogger(__name__)

READ_COUNT = 16
PUBLISH_MODES = ("cron", "on_forecast")
DELIVERED_MARGIN_S = 24 * 3600  # delivered markers outlive the forecast by a day
CRON_WAIT_STEP_S = 5.0


def missed_cycle_reason(
    status: InferenceStatus, previous_issue: datetime | None
) -> tuple[str, str]:
    """(reason, message) for a cycle with no new forecast, from the site's inference status.

    The worker's last refusal explains it when it concerns an issue time after the previous
    cycle's forecast (warming_up, gap, behind, internal_error); else no new radar frame came.
    """
    refusal = status.refusal_after(previous_issue)
    if refusal is not None:
        return refusal.reason, refusal.message
    if previous_issue is None:
        return "warming_up", "no forecast yet"
    return "no_new_frame", (
        f"no forecast newer than {previous_issue:%Y-%m-%dT%H:%MZ}: no new radar frame arrived"
    )


class Publisher(StreamWorker):
    """One publisher replica; ``subscribers`` by name (see `service.publish.subscribers`).

    `run_mode` publishes until `request_stop`: at every cron tick (``cron``) or on each
    forecast event (``on_forecast``), one pass per `work_once` of the shared worker loop.
    """

    name = "publisher"

    def __init__(
        self,
        settings: PublishSettings,
        connection: redis.Redis,
        subscribers: dict[str, Subscriber],
        consumer: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(connection, settings, consumer)
        self.settings: PublishSettings = settings
        self.subscribers = subscribers
        self.mode: str = settings.publish_mode
        self._next_cycle: datetime | None = None
        self._now = now
        self.forecasts = ForecastStore(connection, settings.forecast_ttl_s)
        self.status = StatusStore(connection)
        self.window = WindowStore.from_settings(connection, settings)
        self.state = PublishState(
            connection,
            settings.forecast_ttl_s + DELIVERED_MARGIN_S,
            settings.publish_dead_letters_max,
        )
        policy = RetryPolicy(
            settings.publish_max_attempts,
            settings.publish_backoff_s,
            settings.publish_backoff_max_s,
        )
        self.deliverer = Deliverer(
            self.state,
            self.forecasts,
            subscribers,
            policy,
            settings.publish_lock_ttl_s,
            ProductIdentity.from_settings(settings),
            self.stop_event,
            rng,
            now,
        )

    def now(self) -> datetime:
        return self._now()

    def close(self) -> None:
        for subscriber in self.subscribers.values():
            subscriber.close()

    # -- deliveries ------------------------------------------------------------------------
    def method_of(self, subscriber: str) -> str:
        """The method whose nowcasts ``subscriber`` gets (its own, else publish_method)."""
        for config in self.settings.subscribers:
            if config.name == subscriber and config.method:
                return config.method
        return self.settings.publish_method

    def publishes(self, site_id: str) -> bool:
        return not self.settings.publish_sites or site_id in self.settings.publish_sites

    def publish_issue(self, site_id: str, issue_time: datetime) -> dict[str, Outcome]:
        """Deliver the nowcast of (site, issue time) to every subscriber; name -> outcome.

        Stops between subscribers when a stop is requested (the rest: "interrupted").
        """
        outcomes: dict[str, Outcome] = {}
        for name in self.subscribers:
            if self.stop_event.is_set():
                outcomes[name] = "interrupted"
                continue
            job = DeliveryJob(name, site_id, self.method_of(name), issue_time)
            outcomes[name] = self.deliverer.deliver(job)
        return outcomes

    def replay(self) -> dict[str, int]:
        """Try the dead letters again; outcome -> count (see `Deliverer.replay`)."""
        return self.deliverer.replay()

    # -- cron ------------------------------------------------------------------------------
    def sites(self) -> list[str]:
        return list(self.settings.publish_sites) or self.window.sites()

    def run_cycle(self, cycle_time: datetime) -> dict[str, dict[str, Outcome]]:
        """One cron cycle: check each site for a missed cycle, publish its latest nowcast.

        Returns site -> subscriber -> outcome (sites with no forecast are absent).
        """
        claim_ttl = max(3600, self.settings.forecast_ttl_s)
        report: dict[str, dict[str, Outcome]] = {}
        for site_id in self.sites():
            if self.stop_event.is_set():
                break
            latest = self.forecasts.latest_issue_time(site_id, self.settings.publish_method)
            if self.state.claim_cycle(site_id, cycle_time, claim_ttl):
                self._check_cycle(site_id, cycle_time, latest)
            if latest is not None:
                report[site_id] = self.publish_issue(site_id, latest)
        return report

    def _check_cycle(self, site_id: str, cycle_time: datetime, latest: datetime | None) -> None:
        previous = self.state.last_cycle_issue(site_id)
        if latest is None or (previous is not None and latest <= previous):
            reason, message = missed_cycle_reason(self.status.get(site_id), previous)
            self.state.record_missed(MissedCycle(site_id, cycle_time, reason, message, latest))
            log.warning(
                "missed cycle %s for %s: %s (%s)",
                f"{cycle_time:%Y-%m-%dT%H:%MZ}",
                site_id,
                reason,
                message,
            )
        self.state.record_cycle(site_id, cycle_time, latest)

    def cycle_at_or_before(self, t: datetime) -> datetime:
        """The newest cron tick at or before ``t`` (UTC)."""
        ticks = croniter(self.settings.publish_cron, t + timedelta(seconds=1))
        return ticks.get_prev(datetime).astimezone(UTC)

    def next_cycle(self, after: datetime) -> datetime:
        return croniter(self.settings.publish_cron, after).get_next(datetime).astimezone(UTC)

    def cron_once(self, block_ms: int) -> int:
        """Run the cycle that is due, else wait for it (up to ``block_ms``)."""
        if self._next_cycle is None:
            self._next_cycle = self.next_cycle(self._now())
            log.info(
                "publisher %s: cron %r, next %s",
                self.consumer,
                self.settings.publish_cron,
                self._next_cycle,
            )
        wait_s = (self._next_cycle - self._now()).total_seconds()
        if wait_s > 0:
            self.stop_event.wait(min(wait_s, max(block_ms / 1000, CRON_WAIT_STEP_S)))
            return 0
        report = self.run_cycle(self._next_cycle)
        self._next_cycle = self.next_cycle(max(self._next_cycle, self._now()))
        return len(report)

    # -- on each new forecast --------------------------------------------------------------
    def ensure_group(self) -> None:
        ensure_group(self.redis, keys.FORECAST_EVENTS, keys.PUBLISH_GROUP)

    def process_stream_once(self, block_ms: int | None = None) -> int:
        """Handle this consumer's pending entries, a dead replica's, then new ones.

        Returns how many entries were acknowledged.
        """
        entries = self.read_group(
            keys.FORECAST_EVENTS,
            keys.PUBLISH_GROUP,
            self.settings.publish_claim_idle_ms,
            READ_COUNT,
            block_ms,
        )
        acked = 0
        for entry_id, fields in entries:
            if self.stop_event.is_set():
                break
            if self._handle_event(fields):
                self.redis.xack(keys.FORECAST_EVENTS, keys.PUBLISH_GROUP, entry_id)
                acked += 1
        return acked

    def _handle_event(self, fields: dict[bytes, bytes]) -> bool:
        """Publish one forecast event; True when it may be acknowledged (all final)."""
        if not fields:  # trimmed from the stream while pending
            return True
        try:
            site_id = fields[b"site"].decode()
            issue_time = parse_time(fields[b"issue_time"].decode())
            methods = fields[b"methods"].decode().split(",")
        except (KeyError, ValueError, UnicodeDecodeError):
            log.error("malformed forecast event %s; skipped", fields)
            return True
        if not self.publishes(site_id) or self.settings.publish_method not in methods:
            return True
        outcomes = self.publish_issue(site_id, issue_time)
        return all(outcome in FINAL_OUTCOMES for outcome in outcomes.values())

    # -- loop ------------------------------------------------------------------------------
    def run_mode(self, mode: str | None = None) -> None:
        """Publish in ``mode`` (default: the setting) until `request_stop`."""
        name = mode or self.settings.publish_mode
        if name not in PUBLISH_MODES:
            raise ValueError(f"unknown publish mode {name!r}; valid: {sorted(PUBLISH_MODES)}")
        self.mode = name
        if name == "on_forecast":
            log.info("publisher %s on %s", self.consumer, keys.FORECAST_EVENTS)
        self.run()

    def work_once(self, block_ms: int) -> int:
        if self.mode == "cron":
            return self.cron_once(block_ms)
        return self.process_stream_once(block_ms)

    def heartbeat(self) -> None:
        self.state.heartbeat(self.consumer, self.mode)
