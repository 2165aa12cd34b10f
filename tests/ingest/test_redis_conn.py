"""The embedded Redis: started on demand, saved and stopped on exit even with clients left."""

from __future__ import annotations

import os

import redis

from core.redis_conn import embedded_url, open_redis, redacted
from tests.ingest.helpers import small_settings


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_embedded_redis_saves_and_stops_although_other_clients_are_connected(tmp_path):
    settings = small_settings(tmp_path).model_copy(update={"redis_url": None})
    with open_redis(settings) as connection:
        pid = connection.pid
        connection.set("kept", "yes")
        other = redis.Redis.from_url(embedded_url(connection))  # another client, left open
        assert other.get("kept") == b"yes"
        busy = connection.connection_pool.get_connection()  # a second pooled connection
    assert (settings.redis_data_path / "nowcast.rdb").exists()
    assert not _alive(pid)
    del busy, other
    with open_redis(settings) as connection:  # the saved state comes back
        assert connection.get("kept") == b"yes"


def test_passwords_never_reach_the_logs():
    assert redacted("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"
    assert redacted("redis://host:6379/0") == "redis://host:6379/0"


def test_a_worker_waits_longer_each_time_redis_is_still_away_then_starts_over():
    from core.redis_conn import ReconnectBackoff

    backoff = ReconnectBackoff(base_s=0.25, max_s=2.0)
    assert [backoff.next_delay_s() for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    backoff.reset()
    assert backoff.next_delay_s() == 0.25
    endless = ReconnectBackoff(base_s=1.0, max_s=60.0, failures=10_000)
    assert endless.next_delay_s() == 60.0  # no overflow after a long outage
