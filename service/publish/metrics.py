"""Prometheus families of the publishing state, read from Redis at scrape time.

`service.metrics.RedisStateCollector` yields them, so every API replica reports the same
numbers whichever publisher did the work.
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from service.publish.state import OUTCOMES, PublishState


def publishing_families(
    connection: redis.Redis, subscribers: tuple[str, ...] = (), sites: tuple[str, ...] = ()
) -> Iterator[Metric]:
    """Deliveries by subscriber and outcome, dead letters waiting, missed cycles by site.

    The configured ``subscribers`` (every outcome) and the known ``sites`` have a series from
    the start, at zero, so that rates and panels have one before the first event.
    """
    state = PublishState(connection, delivered_ttl_s=1)  # read only: the TTL is never used
    deliveries = CounterMetricFamily(
        "nowcast_publish_deliveries",
        "Publishing outcomes by subscriber: delivered, retried (a failed attempt retried), "
        "dead_lettered, expired.",
        labels=["subscriber", "outcome"],
    )
    counts = {name: dict.fromkeys(OUTCOMES, 0) for name in subscribers}
    for name, outcomes in state.counts().items():
        counts.setdefault(name, {}).update(outcomes)
    for subscriber, outcomes in sorted(counts.items()):
        for outcome, value in sorted(outcomes.items()):
            deliveries.add_metric([subscriber, outcome], value)
    yield deliveries

    dead = GaugeMetricFamily(
        "nowcast_publish_dead_letters", "Deliveries in the dead-letter list, waiting for replay."
    )
    dead.add_metric([], state.dead_letter_count())
    yield dead

    missed = CounterMetricFamily(
        "nowcast_publish_missed_cycles",
        "Cron cycles in which the site had no forecast newer than at the previous cycle.",
        labels=["site"],
    )
    for site, value in sorted({**dict.fromkeys(sites, 0), **state.missed_counts()}.items()):
        missed.add_metric([site], value)
    yield missed
