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
import os
import random
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import redis
from croniter import croniter

from ingest import keys
from ingest.redis_conn import ReconnectBackoff
from ingest.settings import Settings
from ingest.streams import ensure_group, group_entries
from ingest.window import WindowStore
from service.forecast import parse_time
from service.forecast_store import ForecastStore
from service.publish.delivery import FINAL_OUTCOMES, Deliverer, Outcome, RetryPolicy
from service.publish.message import DeliveryJob
from service.publish.state import MissedCycle, PublishState
from service.publish.subscribers import Subscriber

log = logging.getLogger(__name__)

READ_COUNT = 16
DELIVERED_MARGIN_S = 24 * 3600  # delivered markers outlive the forecast by a day
CRON_WAIT_STEP_S = 5.0


def missed_cycle_reason(
    infer_status: dict[str, str], previous_issue: datetime | None
) -> tuple[str, str]:
    """(reason, message) for a cycle with no new forecast, from the inference status hash.

    The worker's last refusal explains it when it concerns an issue time after the previous
    cycle's forecast (warming_up, gap, behind, internal_error); else no new radar frame came.
    """
    refused_at = infer_status.get("refused_issue_time")
    reason = infer_status.get("refused_reason")
    if (
        reason
        and refused_at
        and (previous_issue is None or parse_time(refused_at) > previous_issue)
    ):
        return reason, infer_status.get("refused_message", "")
    if previous_issue is None:
        return "warming_up", "no forecast yet"
    return "no_new_frame", (
        f"no forecast newer than {previous_issue:%Y-%m-%dT%H:%MZ}: no new radar frame arrived"
    )


class Publisher:
    """One publisher replica; ``subscribers`` by name (see `service.publish.subscribers`)."""

    def __init__(
        self,
        settings: Settings,
        connection: redis.Redis,
        subscribers: dict[str, Subscriber],
        consumer: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.redis = connection
        self.subscribers = subscribers
        self._backoff = ReconnectBackoff(settings.poll_interval_s, settings.redis_reconnect_max_s)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.stop_event = threading.Event()
        self._now = now
        self.forecasts = ForecastStore(connection, settings.forecast_ttl_s)
        self.window = WindowStore(connection, settings.window_frames, settings.events_stream_maxlen)
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
            settings.public_url,
            self.stop_event,
            rng,
            now,
        )

    def request_stop(self) -> None:
        self.stop_event.set()

    def now(self) -> datetime:
        return self._now()

    def close(self) -> None:
        for subscriber in self.subscribers.values():
            subscriber.close()

    # -- deliveries ------------------------------------------------------------------------
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
            job = DeliveryJob(name, site_id, self.settings.publish_method, issue_time)
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
            raw = self.redis.hgetall(keys.infer_status(site_id))
            status = {k.decode(): v.decode() for k, v in raw.items()}
            reason, message = missed_cycle_reason(status, previous)
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

    def run_cron(self) -> None:
        """Run a cycle at every tick until a stop is requested."""
        cycle = self.next_cycle(self._now())
        log.info("publisher %s: cron %r, next %s", self.consumer, self.settings.publish_cron, cycle)
        while not self.stop_event.is_set():
            self._guarded(lambda: self.state.heartbeat(self.consumer, "cron"))
            wait_s = (cycle - self._now()).total_seconds()
            if wait_s > 0:
                self.stop_event.wait(min(wait_s, CRON_WAIT_STEP_S))
                continue
            self._guarded(partial(self.run_cycle, cycle))
            cycle = self.next_cycle(max(cycle, self._now()))

    # -- on each new forecast --------------------------------------------------------------
    def ensure_group(self) -> None:
        ensure_group(self.redis, keys.FORECAST_EVENTS, keys.PUBLISH_GROUP)

    def process_stream_once(self, block_ms: int | None = None) -> int:
        """Handle this consumer's pending entries, a dead replica's, then new ones.

        Returns how many entries were acknowledged.
        """
        self.ensure_group()
        entries = group_entries(
            self.redis,
            keys.FORECAST_EVENTS,
            keys.PUBLISH_GROUP,
            self.consumer,
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

    def run_on_forecast(self) -> None:
        block_ms = int(self.settings.poll_interval_s * 1000)
        log.info("publisher %s on %s", self.consumer, keys.FORECAST_EVENTS)
        while not self.stop_event.is_set():
            self._guarded(lambda: self.state.heartbeat(self.consumer, "on_forecast"))
            self._guarded(lambda: self.process_stream_once(block_ms))

    # -- loop ------------------------------------------------------------------------------
    def run(self, mode: str | None = None) -> None:
        """Publish in ``mode`` (default: the setting) until `request_stop`."""
        loops = {"cron": self.run_cron, "on_forecast": self.run_on_forecast}
        name = mode or self.settings.publish_mode
        if name not in loops:
            raise ValueError(f"unknown publish mode {name!r}; valid: {sorted(loops)}")
        loops[name]()
        log.info("publisher %s stopped", self.consumer)

    def _guarded(self, step: Callable[[], object]) -> None:
        """Run ``step``; a Redis outage is logged and waited out, never fatal."""
        try:
            step()
            self._backoff.reset()
        except redis.ConnectionError as exc:
            delay_s = self._backoff.next_delay_s()
            log.error("redis unavailable (%s); retrying in %.1fs", exc, delay_s)
            self.stop_event.wait(delay_s)
