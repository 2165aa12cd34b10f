"""The embedded Redis: started on demand, saved and stopped on exit even with clients left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import redis

from core.redis_conn import embedded_url, open_redis, redacted
from tests.conftest import REPO_ROOT
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
        pid = int(connection.info()["process_id"])
        connection.set("kept", "yes")
        other = redis.Redis.from_url(embedded_url(connection))  # another client, left open
        assert other.get("kept") == b"yes"
        busy = connection.connection_pool.get_connection()  # a second pooled connection
    assert (settings.redis_data_path / "nowcast.rdb").exists()
    assert not _alive(pid)
    del busy, other
    with open_redis(settings) as connection:  # the saved state comes back
        assert connection.get("kept") == b"yes"


# a process that starts the embedded Redis, says its pid, then waits to be killed
HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from core.embedded_redis import EmbeddedRedis
    server = EmbeddedRedis(Path(sys.argv[1]))
    server.start()
    print(server.pid, flush=True)
    time.sleep(600)
    """
)


def _wait_until(condition, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGHUP])
def test_the_embedded_redis_dies_with_the_process_that_started_it(tmp_path, signum):
    """Issue 33, finding 9: SIGKILL or a closed terminal (SIGHUP) left redis-server running."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "redis")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    assert holder.stdout is not None
    redis_pid = int(holder.stdout.readline())
    assert _alive(redis_pid)
    holder.send_signal(signum)
    holder.wait(timeout=10)
    assert _wait_until(lambda: not _alive(redis_pid)), "redis-server outlived its parent"


def test_the_embedded_redis_is_restarted_when_it_dies_under_a_running_process(tmp_path):
    """Issue 33, finding 6: after kill -9 of the demo's Redis nothing restarted it."""
    from core.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    server.supervise()
    try:
        client = server.client()
        client.set("kept", "yes")
        time.sleep(1.2)  # the append-only file is written every second
        first = server.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert _wait_until(lambda: server.restarts == 1 and server.pid != first)

        def answers() -> bool:
            try:
                return client.get("kept") == b"yes"  # the same client reconnects
            except redis.ConnectionError:
                return False

        assert _wait_until(answers)
    finally:
        server.stop()
    assert server.process is not None and server.process.poll() is not None


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
