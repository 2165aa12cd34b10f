"""What an operator's alerts read (`deploy/prometheus/rules/nowcast.yml`), from Redis at scrape
time, beside `service.metrics.RedisStateCollector`.

- ``nowcast_workers_alive{kind}``: ingest, inference and publisher workers whose heartbeat is
  alive (one TTL, `core.worker.HEARTBEAT_TTL_S`);
- ``nowcast_site_cadence_seconds{site}`` and ``nowcast_forecast_lag_seconds{site}``: the
  site's radar cadence, and how far its newest forecast trails its newest frame;
- ``nowcast_redis_used_memory_bytes`` and ``nowcast_redis_maxmemory_bytes`` (0: no limit);
- ``nowcast_skill_csi_6h{site, method, threshold_mmh}``: each method's CSI over the 6 h of
  valid time up to the site's newest frame (pooled over its leads) per site, so that it also
  reads a replay of archived frames (the wall clock would find no sample), and
  ``nowcast_skill_observed_cells_6h{site, threshold_mmh}``, the observed event cells it rests
  on. Label values are bounded by the
  sites with a window and the configured methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core import keys
from ingest.window import WindowStore
from model.verification.scores import threshold_key
from service.methods_runner import N_LEADS
from service.status_store import StatusStore
from service.verification_store import VerificationStore

SKILL_WINDOW = timedelta(hours=6)
SKILL_THRESHOLDS_MMH = ("0.5", "2.0")
WORKER_KINDS = {
    "ingest": keys.HEALTH,
    "inference": keys.INFER_HEALTH,
    "publisher": keys.PUBLISH_HEALTH,
}


class OpsCollector(Collector):
    """Gauges for alerting; ``methods``: the configured methods (bounded label values)."""

    def __init__(
        self,
        connection: redis.Redis,
        window: WindowStore,
        verification: VerificationStore,
        methods: tuple[str, ...],
    ) -> None:
        self._redis = connection
        self._window = window
        self._verification = verification
        self._status = StatusStore(connection)
        self._methods = methods

    def collect(self) -> Iterator[Metric]:
        try:
            sites = self._window.sites()
            yield self._workers()
            yield from self._sites(sites)
            yield from self._memory()
            yield from self._skill(sites)
        except redis.RedisError:
            return  # nowcast_redis_up (service.metrics) says so

    def _workers(self) -> Metric:
        alive = GaugeMetricFamily(
            "nowcast_workers_alive", "Workers with a live heartbeat, by kind.", labels=["kind"]
        )
        for kind, prefix in WORKER_KINDS.items():
            count = sum(1 for _ in self._redis.scan_iter(match=f"{prefix}:*"))
            alive.add_metric([kind], float(count))
        return alive

    def _sites(self, sites: list[str]) -> Iterator[Metric]:
        cadence = GaugeMetricFamily(
            "nowcast_site_cadence_seconds", "The site's radar cadence.", labels=["site"]
        )
        lag = GaugeMetricFamily(
            "nowcast_forecast_lag_seconds",
            "How far the site's newest forecast trails its newest frame (valid times).",
            labels=["site"],
        )
        for site in sites:
            minutes = self._window.cadence_min(site)
            epochs = self._window.epochs(site)
            if minutes is None or not epochs:
                continue
            cadence.add_metric([site], minutes * 60.0)
            issued = self._status.get(site).issue_time
            newest = float(epochs[-1])
            lag.add_metric([site], newest - (issued.timestamp() if issued else float(epochs[0])))
        yield cadence
        yield lag

    def _memory(self) -> Iterator[Metric]:
        info = self._redis.info("memory")
        used = GaugeMetricFamily("nowcast_redis_used_memory_bytes", "Redis used_memory.")
        used.add_metric([], float(info.get("used_memory", 0)))
        limit = GaugeMetricFamily("nowcast_redis_maxmemory_bytes", "Redis maxmemory (0: no limit).")
        limit.add_metric([], float(info.get("maxmemory", 0)))
        yield used
        yield limit

    def _skill(self, sites: list[str]) -> Iterator[Metric]:
        csi = GaugeMetricFamily(
            "nowcast_skill_csi_6h",
            "CSI over the last 6 h, all leads pooled, by site, method and threshold (mm/h).",
            labels=["site", "method", "threshold_mmh"],
        )
        events = GaugeMetricFamily(
            "nowcast_skill_observed_cells_6h",
            "Observed event cells (hits + misses) behind nowcast_skill_csi_6h.",
            labels=["site", "threshold_mmh"],
        )
        for site in sites:
            epochs = self._window.epochs(site)
            if not epochs:
                continue
            since = datetime.fromtimestamp(epochs[-1], tz=UTC) - SKILL_WINDOW
            for method in self._methods:
                acc = self._verification.summed([site], method, N_LEADS, since)
                for t, key in enumerate(threshold_key(v) for v in acc.thresholds_mmh):
                    if key not in SKILL_THRESHOLDS_MMH:
                        continue
                    hits, misses = float(acc.hits[:, t].sum()), float(acc.misses[:, t].sum())
                    alarms = float(acc.false_alarms[:, t].sum())
                    if hits + misses + alarms > 0:
                        csi.add_metric([site, method, key], hits / (hits + misses + alarms))
                    if method == self._methods[0]:
                        events.add_metric([site, key], hits + misses)
        yield csi
        yield events
