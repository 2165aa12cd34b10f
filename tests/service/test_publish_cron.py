"""The cron mode: the latest nowcast per cycle, missed cycles reported with their reason,
replicas at the same tick delivering once."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import httpx

from core import keys
from service.api.app import create_app
from service.publish.scheduler import missed_cycle_reason
from service.status_store import parse_status
from tests.service.live_server import serving
from tests.service.publish_helpers import (
    SECRET,
    issue,
    publish_settings,
    publisher,
    store_forecast,
    webhook,
)
from tests.service.receiver import Receiver, receiving


def _refuse(redis_conn, site, issue_time, reason, message):
    """What the inference worker records when it cannot forecast an issue time."""
    redis_conn.hset(
        keys.infer_status(site),
        mapping={
            "refused_issue_time": issue_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "refused_reason": reason,
            "refused_message": message,
        },
    )


def test_a_cycle_without_a_new_forecast_is_reported_with_its_reason(tmp_path, redis_conn, caplog):
    caplog.set_level(logging.WARNING, logger="service.publish")
    store_forecast(redis_conn, "site-a", issue(0))
    redis_conn.sadd(keys.SITES, "site-b")  # a window, no forecast yet
    _refuse(redis_conn, "site-b", issue(0), "warming_up", "warming up: 1 of the 5 input frames")
    with receiving(Receiver(SECRET)) as rx:
        settings = publish_settings(tmp_path, [webhook(rx.url)])
        first, second = publisher(settings, redis_conn, "p1"), publisher(settings, redis_conn, "p2")

        assert first.run_cycle(issue(1)) == {"site-a": {"hook": "delivered"}}
        assert first.state.missed_counts() == {"site-b": 1}

        # 12:12: the frame of 12:06 never came, so no forecast of 12:06 (a radar gap)
        _refuse(redis_conn, "site-a", issue(1), "gap", "frame 2026-03-01T12:06Z missing")
        assert first.run_cycle(issue(2)) == {"site-a": {"hook": "already_delivered"}}
        second.run_cycle(issue(2))  # a second replica at the same tick counts nothing twice
        assert first.state.missed_counts() == {"site-a": 1, "site-b": 2}
        assert "missed cycle 2026-03-01T12:12Z for site-a: gap" in caplog.text

        store_forecast(redis_conn, "site-a", issue(3))
        assert first.run_cycle(issue(3) + timedelta(seconds=30)) == {
            "site-a": {"hook": "delivered"}
        }
        assert first.state.missed_counts() == {"site-a": 1, "site-b": 3}
        first.close()
        second.close()
        assert sorted(rx.accepted) == [
            "hook:site-a:20260301T120000Z",
            "hook:site-a:20260301T121800Z",
        ]

    with serving(create_app(settings, redis_conn)) as api:
        body = httpx.get(f"{api}/v1/publishing").json()
        metrics = httpx.get(f"{api}/metrics").text
    assert body["missed_cycles"] == {"site-a": 1, "site-b": 3}
    gap = [m for m in body["recent_missed"] if m["site"] == "site-a"]
    assert gap == [
        {
            "site": "site-a",
            "cycle_time": "2026-03-01T12:12:00Z",
            "reason": "gap",
            "message": "frame 2026-03-01T12:06Z missing",
            "latest_issue_time": "2026-03-01T12:00:00Z",
        }
    ]
    assert {m["reason"] for m in body["recent_missed"] if m["site"] == "site-b"} == {"warming_up"}
    assert 'nowcast_publish_missed_cycles_total{site="site-a"} 1.0' in metrics
    assert 'nowcast_publish_missed_cycles_total{site="site-b"} 3.0' in metrics


def test_the_reason_of_a_missed_cycle_comes_from_a_recent_refusal_only():
    refusal = parse_status(
        {
            "refused_issue_time": "2026-03-01T12:06:00Z",
            "refused_reason": "gap",
            "refused_message": "frame missing",
        }
    )
    assert missed_cycle_reason(refusal, issue(0)) == ("gap", "frame missing")
    assert missed_cycle_reason(refusal, None) == ("gap", "frame missing")
    stale = missed_cycle_reason(refusal, issue(2))  # refused before the last forecast
    assert stale[0] == "no_new_frame" and "12:12Z" in stale[1]
    assert missed_cycle_reason(parse_status({}), None) == ("warming_up", "no forecast yet")


def test_two_replicas_at_the_same_tick_deliver_each_latest_nowcast_once(tmp_path, redis_conn):
    sites = [f"site-{i}" for i in range(6)]
    for i, site in enumerate(sites):
        store_forecast(redis_conn, site, issue(0), seed=i)
    with receiving(Receiver(SECRET, fail_first=1)) as rx:
        settings = publish_settings(tmp_path, [webhook(rx.url)], publish_sites=tuple(sites))
        replicas = [publisher(settings, redis_conn, f"p{i}") for i in range(2)]
        reports: list[dict] = []
        threads = [
            threading.Thread(target=lambda p=p: reports.append(p.run_cycle(issue(1))))
            for p in replicas
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        for p in replicas:
            p.close()
        assert dict(rx.accepted) == {f"hook:{s}:20260301T120000Z": 1 for s in sites}
        outcomes = [o for report in reports for site in report.values() for o in site.values()]
        assert outcomes.count("delivered") == len(sites)
        assert set(outcomes) <= {"delivered", "busy", "already_delivered"}


def test_cycles_follow_the_cron_expression_in_utc(tmp_path, redis_conn):
    pub = publisher(publish_settings(tmp_path, []), redis_conn, "p1")
    assert pub.cycle_at_or_before(issue(1) + timedelta(minutes=1, seconds=30)) == issue(1)
    assert pub.cycle_at_or_before(issue(1)) == issue(1)
    assert pub.next_cycle(issue(1)) == issue(2)
    hourly = publisher(publish_settings(tmp_path, [], publish_cron="5 * * * *"), redis_conn, "p2")
    assert hourly.next_cycle(issue(0)) == issue(0) + timedelta(minutes=5)
