"""Dead letters: a receiver that always fails, the list in the API and metrics, and
``nowcast publish --replay`` (the real command, in a subprocess) once the receiver is back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx

from core import keys
from service.api.app import create_app
from service.publish.message import DeliveryJob
from service.publish.state import DeadLetter
from tests.conftest import REPO_ROOT
from tests.service.live_server import serving
from tests.service.publish_helpers import (
    OTHER_SECRET,
    SECRET,
    issue,
    publish_settings,
    publisher,
    store_forecast,
    webhook,
)
from tests.service.receiver import Receiver, receiving


def _drain(pub):
    while pub.process_stream_once() > 0:
        pass


def _nowcast(tmp_path, redis_url, url, *args, wait=True):
    """Run ``nowcast publish ARGS`` with the test's Redis and one webhook subscriber."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOWCAST_")}
    env.update(
        REDIS_URL=redis_url,
        NOWCAST_DATA_DIR=str(tmp_path),
        NOWCAST_SUBSCRIBERS=json.dumps([webhook(url)]),
        NOWCAST_PUBLISH_BACKOFF_S="0.01",
        NOWCAST_PUBLISH_BACKOFF_MAX_S="0.05",
        NOWCAST_PUBLISH_MAX_ATTEMPTS="3",
        NOWCAST_POLL_INTERVAL_S="0.1",
    )
    command = [sys.executable, "-m", "service.cli", "publish", *args]
    if not wait:
        return subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    return subprocess.run(
        command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def test_dead_letters_are_shown_then_replayed_once_the_receiver_is_back(
    tmp_path, redis_conn, redis_url
):
    for k in range(2):
        store_forecast(redis_conn, "site-a", issue(k))
    ids = [DeliveryJob("hook", "site-a", "convlstm", issue(k)).delivery_id for k in range(2)]
    with receiving(Receiver(SECRET, down=True)) as rx:
        settings = publish_settings(tmp_path, [webhook(rx.url)], publish_mode="on_forecast")
        pub = publisher(settings, redis_conn, "p1")
        _drain(pub)
        assert not rx.accepted and sum(rx.attempts.values()) == 2 * 4
        assert redis_conn.xpending(keys.FORECAST_EVENTS, keys.PUBLISH_GROUP)["pending"] == 0

        with serving(create_app(settings, redis_conn)) as api:
            response = httpx.get(f"{api}/v1/publishing")
            assert response.status_code == 200
            body = response.json()
            assert SECRET not in response.text and rx.url not in response.text
            assert body["dead_letter_count"] == 2
            assert sorted(d["delivery_id"] for d in body["dead_letters"]) == ids
            assert {(d["reason"], d["attempts"]) for d in body["dead_letters"]} == {("HTTP 503", 4)}
            assert body["subscribers"] == [
                {
                    "name": "hook",
                    "kind": "webhook",
                    "payload": "summary",
                    "counts": {"delivered": 0, "retried": 6, "dead_lettered": 2, "expired": 0},
                }
            ]
            metrics = httpx.get(f"{api}/metrics").text
            assert "nowcast_publish_dead_letters 2.0" in metrics
            assert (
                'nowcast_publish_deliveries_total{outcome="dead_lettered",subscriber="hook"} 2.0'
                in metrics
            )

        # a held dead letter is not retried by the schedule, only by a replay
        assert pub.run_cycle(issue(2)) == {"site-a": {"hook": "held_dead_letter"}}
        assert sum(rx.attempts.values()) == 8
        pub.close()

        still_down = _nowcast(tmp_path, redis_url, rx.url, "--replay")
        assert still_down.returncode == 1, still_down.stderr
        assert "2 dead_lettered; dead letters left: 2" in still_down.stdout
        letters = {d.delivery_id: d for d in pub.state.dead_letters()}
        assert {d.attempts for d in letters.values()} == {4 + 3}

        rx.down = False
        replayed = _nowcast(tmp_path, redis_url, rx.url, "--replay")
        assert replayed.returncode == 0, replayed.stderr
        assert "2 delivered; dead letters left: 0" in replayed.stdout
        assert dict(rx.accepted) == dict.fromkeys(ids, 1) and rx.bad_signatures == 0
        assert pub.state.dead_letter_count() == 0

        again = _nowcast(tmp_path, redis_url, rx.url, "--replay")
        assert "replayed: nothing" in again.stdout and dict(rx.accepted) == dict.fromkeys(ids, 1)
        with serving(create_app(settings, redis_conn)) as api:
            body = httpx.get(f"{api}/v1/publishing").json()
        assert body["dead_letter_count"] == 0 and body["subscribers"][0]["counts"]["delivered"] == 2


def test_a_refusal_is_not_retried_and_a_dead_letter_of_an_expired_forecast_is_dropped(
    tmp_path, redis_conn
):
    store_forecast(redis_conn, "site-a", issue(0))
    with receiving(Receiver(OTHER_SECRET)) as rx:
        settings = publish_settings(tmp_path, [webhook(rx.url)], publish_mode="on_forecast")
        pub = publisher(settings, redis_conn, "p1")
        _drain(pub)
        (letter,) = pub.state.dead_letters()
        assert (letter.reason, letter.attempts) == ("HTTP 401", 1)  # a 4xx: no retry
        assert rx.bad_signatures == 1

        redis_conn.delete(keys.forecast("site-a", "convlstm", int(issue(0).timestamp())))
        assert pub.replay() == {"expired": 1}
        assert pub.state.dead_letter_count() == 0
        assert pub.state.counts()["hook"]["expired"] == 1
        pub.close()


def test_dead_letters_round_trip_through_json():
    letter = DeadLetter("h:s:1", "h", "s", "convlstm", issue(1), "HTTP 500", 3, issue(2))
    assert DeadLetter.from_json(letter.to_json()) == letter


def test_publish_once_then_a_running_publisher_stops_on_sigterm(tmp_path, redis_conn, redis_url):
    store_forecast(redis_conn, "site-a", issue(0))
    with receiving(Receiver(SECRET)) as rx:
        once = _nowcast(tmp_path, redis_url, rx.url, "--once", "--mode", "cron")
        assert once.returncode == 0, once.stderr
        assert "1 delivered" in once.stdout

        store_forecast(redis_conn, "site-a", issue(1))
        running = _nowcast(tmp_path, redis_url, rx.url, "--mode", "on_forecast", wait=False)
        try:
            end = time.monotonic() + 60
            while len(rx.accepted) < 2 and time.monotonic() < end:
                time.sleep(0.1)
            running.send_signal(signal.SIGTERM)
            assert running.wait(timeout=30) == 0
        finally:
            if running.poll() is None:
                running.kill()
        ids = [DeliveryJob("hook", "site-a", "convlstm", issue(k)).delivery_id for k in range(2)]
        assert dict(rx.accepted) == dict.fromkeys(ids, 1)
