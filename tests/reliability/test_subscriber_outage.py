"""A webhook subscriber down for an hour of cycles, with the real ``nowcast publish`` process.

The publisher runs ``--mode on_forecast`` while ten forecasts (an hour at the 6-minute
cadence) are stored and the receiver answers 503 to everything: each delivery is retried, then
dead-lettered. The publisher is then killed (SIGKILL) and restarted, the receiver comes back,
new forecasts are delivered at once, and ``nowcast publish --replay`` delivers the dead
letters. Every (subscriber, site, issue time) must be accepted exactly once, with a valid
signature; nothing is left in the dead-letter list.
"""

from __future__ import annotations

import json

import pytest

from service.publish.message import DeliveryJob
from service.publish.state import PublishState
from tests.reliability.procs import nowcast, nowcast_env, run_nowcast, wait_until
from tests.service.publish_helpers import SECRET, issue, store_forecast, webhook
from tests.service.receiver import Receiver, receiving

CYCLES = 10  # an hour of 6-minute cycles
AFTER = 2  # forecasts made once the subscriber is back
ATTEMPTS = 3


@pytest.mark.timeout(180)
def test_an_hour_down_then_retries_dead_letters_and_replay_lose_and_duplicate_nothing(
    tmp_path, redis_conn, redis_url
):
    ids = [DeliveryJob("hook", "site-a", "convlstm", issue(k)).delivery_id for k in range(12)]
    state = PublishState(redis_conn, 3600)
    with receiving(Receiver(SECRET, down=True)) as rx:
        env = nowcast_env(
            tmp_path / "data",
            redis_url,
            subscribers=json.dumps([webhook(rx.url)]),
            publish_max_attempts=ATTEMPTS,
            publish_backoff_s=0.01,
            publish_backoff_max_s=0.05,
            publish_timeout_s=2,
            poll_interval_s=0.1,
        )
        publish = ["publish", "--mode", "on_forecast"]
        with nowcast(publish, env, tmp_path / "publish-1.log") as first:
            for k in range(CYCLES):
                store_forecast(redis_conn, "site-a", issue(k), seed=k)
            wait_until(
                lambda: state.dead_letter_count() == CYCLES,
                90,
                "every delivery of the outage dead-lettered",
                [first.proc],
            )
            first.proc.kill()  # not even a clean stop
            first.proc.wait(timeout=10)
        assert sum(rx.attempts.values()) == CYCLES * ATTEMPTS and not rx.accepted

        rx.down = False
        with nowcast(publish, env, tmp_path / "publish-2.log") as second:
            for k in range(CYCLES, CYCLES + AFTER):
                store_forecast(redis_conn, "site-a", issue(k), seed=k)
            wait_until(
                lambda: len(rx.accepted) == AFTER, 60, "new forecasts delivered", [second.proc]
            )
            assert state.dead_letter_count() == CYCLES  # held: only a replay sends them
            replay = run_nowcast(["publish", "--replay"], env)
            assert replay.returncode == 0, replay.stdout + replay.stderr
            again = run_nowcast(["publish", "--replay"], env)
            assert "replayed: nothing" in again.stdout
    assert dict(rx.accepted) == dict.fromkeys(ids, 1)  # each once: none lost, none twice
    assert rx.bad_signatures == 0
    assert state.dead_letter_count() == 0
    assert f"{CYCLES} delivered" in replay.stdout
