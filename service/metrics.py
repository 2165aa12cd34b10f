"""Prometheus metrics (prometheus-client).

Two kinds, so that several processes can serve and work:
- process metrics (HTTP latency, inference latency and batch size) live in the process that
  observes them; with ``PROMETHEUS_MULTIPROC_DIR`` set they are aggregated across processes by
  prometheus-client's multiprocess mode;
- shared state (frames accepted and quarantined, forecasts issued and refused, the inference
  backlog, ingest lag, publishing outcomes; per-site verification in
  `service.verification_metrics`) is read from Redis at scrape
  time by `RedisStateCollector`, so every API replica reports the same numbers whichever
  process did the work.
Metrics are created on first use, never at import time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import redis
from prometheus_client import (
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from core import keys
from core.frame import RejectReason
from core.streams import group_backlog
from service.publish.metrics import publishing_families

REFUSAL_REASONS = ("warming_up", "gap", "behind", "internal_error")
"""Why an issue time is not forecast (`service.inference`)."""
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True)
class ProcessMetrics:
    http_latency: Histogram
    inference_latency: Histogram
    inference_batch: Histogram


@lru_cache
def process_metrics() -> ProcessMetrics:
    """The process's own metrics, registered once in the default registry."""
    return ProcessMetrics(
        http_latency=Histogram(
            "nowcast_http_request_duration_seconds",
            "HTTP request latency by route and status code.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS_S,
        ),
        inference_latency=Histogram(
            "nowcast_inference_duration_seconds",
            "Time to run one nowcast method on one batch of sites.",
            ["method"],
            buckets=LATENCY_BUCKETS_S,
        ),
        inference_batch=Histogram(
            "nowcast_inference_batch_sites",
            "Sites forecast together in one batch.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        ),
    )


class RedisStateCollector(Collector):
    """Collects the shared service state from Redis at scrape time (verification:
    `service.verification_metrics`)."""

    def __init__(
        self,
        connection: redis.Redis,
        methods: tuple[str, ...],
        subscribers: tuple[str, ...] = (),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._redis = connection
        self._methods = methods
        self._subscribers = subscribers
        self._now = now

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except redis.RedisError:
            up = GaugeMetricFamily("nowcast_redis_up", "1 when Redis answered the scrape.")
            up.add_metric([], 0.0)
            yield up

    def _collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("nowcast_redis_up", "1 when Redis answered the scrape.")
        up.add_metric([], 1.0)
        yield up
        ingest = {k.decode(): int(v) for k, v in self._redis.hgetall(keys.COUNTS).items()}
        accepted = CounterMetricFamily(
            "nowcast_frames_accepted",
            "Frames accepted into a window (or archived only).",
            labels=["outcome"],
        )
        quarantined = CounterMetricFamily(
            "nowcast_frames_quarantined", "Frames quarantined, by reason.", labels=["reason"]
        )
        # every known label set from the start, so that rates and alerts have a series
        reasons = {reason.value: 0 for reason in RejectReason}
        outcomes = {"accepted": 0, "archived_only": 0}
        for name, value in ingest.items():
            if name.startswith("quarantined:"):
                reasons[name.split(":", 1)[1]] = value
            else:
                outcomes[name] = value
        for name, value in sorted(outcomes.items()):
            accepted.add_metric([name], value)
        for name, value in sorted(reasons.items()):
            quarantined.add_metric([name], value)
        yield accepted
        yield quarantined
        beyond = CounterMetricFamily(
            "nowcast_cells_beyond_bounds",
            "Cells of accepted frames read as nodata, beyond the physical bounds of rain rate "
            "or reflectivity.",
        )
        beyond.add_metric([], int(self._redis.get(keys.CELLS_BEYOND_BOUNDS) or 0))
        yield beyond

        infer = {k.decode(): int(v) for k, v in self._redis.hgetall(keys.INFER_COUNTS).items()}
        issued = CounterMetricFamily(
            "nowcast_forecasts_issued", "Forecasts stored, by method.", labels=["method"]
        )
        refused = CounterMetricFamily(
            "nowcast_forecasts_refused", "Issue times not forecast, by reason.", labels=["reason"]
        )
        counts: dict[str, dict[str, int]] = {
            "issued": dict.fromkeys(self._methods, 0),
            "refused": dict.fromkeys(REFUSAL_REASONS, 0),
        }
        for name, value in infer.items():
            kind, _, label = name.partition(":")
            if kind in counts:
                counts[kind][label] = value
        for label, value in sorted(counts["issued"].items()):
            issued.add_metric([label], value)
        for label, value in sorted(counts["refused"].items()):
            refused.add_metric([label], value)
        yield issued
        yield refused
        yield from self._backlog()

        lag = GaugeMetricFamily(
            "nowcast_ingest_lag_seconds",
            "Seconds since the site's newest frame was ingested.",
            labels=["site"],
        )
        now_s = self._now().timestamp()
        for site in sorted(s.decode() for s in self._redis.smembers(keys.SITES)):
            stamp = self._redis.hget(keys.site_meta(site), "last_ingest_at")
            if stamp:
                ingested = datetime.fromisoformat(stamp.decode()).timestamp()
                lag.add_metric([site], max(0.0, now_s - ingested))
        yield lag

        sites = tuple(sorted(s.decode() for s in self._redis.smembers(keys.SITES)))
        yield from publishing_families(self._redis, self._subscribers, sites)

    def _backlog(self) -> Iterator[Metric]:
        """The inference workers' backlog: frame events not yet handled, and the oldest's age."""
        events, oldest_ms = group_backlog(self._redis, keys.EVENTS_STREAM, keys.INFER_GROUP)
        count = GaugeMetricFamily(
            "nowcast_inference_backlog_events",
            "Frame events the inference workers have not handled yet (pending or undelivered).",
        )
        count.add_metric([], float(events))
        age = GaugeMetricFamily(
            "nowcast_inference_backlog_oldest_age_seconds",
            "Age of the oldest frame event not handled yet; 0 when none waits.",
        )
        now_ms = self._now().timestamp() * 1000
        age.add_metric([], 0.0 if oldest_ms is None else max(0.0, (now_ms - oldest_ms) / 1000))
        yield count
        yield age


def exposition(*extra: Collector) -> tuple[bytes, str]:
    """The text exposition of this process's (or all processes') metrics plus ``extra``."""
    from prometheus_client import CONTENT_TYPE_LATEST

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
        parts = [generate_latest(registry)]
    else:
        parts = [generate_latest(REGISTRY)]
    if extra:
        shared = CollectorRegistry()
        for collector in extra:
            shared.register(collector)
        parts.append(generate_latest(shared))
    return b"".join(parts), CONTENT_TYPE_LATEST
