"""Publishing on each new forecast through a real HTTP receiver that fails on purpose.

Every nowcast must reach every subscriber exactly once, signed, whatever fails first: slow and
failing answers, two publisher replicas on one stream, a replica that dies holding entries,
a restart that reads the stream again.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import xarray as xr

from core import keys
from service.forecast_store import ForecastStore
from service.publish.message import DeliveryFailed, DeliveryJob, Message
from service.publish.signing import verify
from service.publish.subscribers.folder import FolderSubscriber
from tests.service.publish_helpers import SECRET, issue, publish_settings, publisher, webhook
from tests.service.publish_helpers import store_forecast as store
from tests.service.receiver import Receiver, receiving


def _drain(pub, deadline_s=30.0):
    end = time.monotonic() + deadline_s
    while pub.process_stream_once() > 0:
        assert time.monotonic() < end, "stream not drained"


def _pending(redis_conn):
    return redis_conn.xpending(keys.FORECAST_EVENTS, keys.PUBLISH_GROUP)["pending"]


def _ids(subscriber, sites, steps):
    return {
        DeliveryJob(subscriber, s, "convlstm", issue(k)).delivery_id for s in sites for k in steps
    }


def test_every_nowcast_is_delivered_once_signed_through_a_failing_receiver(tmp_path, redis_conn):
    sites, steps = ("site-a", "site-b"), range(3)
    for k in steps:
        for i, site in enumerate(sites):
            store(redis_conn, site, issue(k), seed=k + i)
    # each delivery: 1st attempt answered 500 after the client's 0.3 s timeout, 2nd a 500
    with receiving(Receiver(SECRET, fail_first=2, slow_first=1, slow_s=0.6)) as rx:
        settings = publish_settings(tmp_path, [webhook(rx.url)], publish_mode="on_forecast")
        pub = publisher(settings, redis_conn, "p1")
        _drain(pub)

        expected = _ids("hook", sites, steps)
        assert dict(rx.accepted) == dict.fromkeys(expected, 1)
        assert rx.bad_signatures == 0
        assert all(rx.attempts[d] == 3 for d in expected)
        assert _pending(redis_conn) == 0
        counts = pub.state.counts()["hook"]
        assert counts == {"delivered": 6, "retried": 12}

        body = json.loads(rx.bodies["hook:site-b:20260301T120600Z"])
        assert (body["site"], body["issue_time"]) == ("site-b", "2026-03-01T12:06:00Z")
        assert len(body["leads"]) == 15 and body["leads"][0]["max_rain_mmh"] > 0
        assert body["links"]["netcdf"].startswith("https://nowcast.example.org/v1/sites/site-b/")
        headers = rx.headers["hook:site-b:20260301T120600Z"]
        assert headers["webhook-id"] == "hook:site-b:20260301T120600Z"
        assert headers["user-agent"] == "nowcast-publisher/2"
        sent_at = verify(SECRET, headers, rx.bodies["hook:site-b:20260301T120600Z"], time.time())
        assert abs(sent_at - time.time()) < 60

        # a restart that lost its consumer group reads the whole stream again: nothing is sent
        redis_conn.xgroup_destroy(keys.FORECAST_EVENTS, keys.PUBLISH_GROUP)
        restarted = publisher(settings, redis_conn, "p1-restarted")
        _drain(restarted)
        assert restarted.run_cycle(issue(3)) == {
            site: {"hook": "already_delivered"} for site in sites
        }
        pub.close()
        restarted.close()
        assert dict(rx.accepted) == dict.fromkeys(expected, 1)
        assert sum(rx.attempts.values()) == 3 * len(expected)


def test_two_replicas_on_one_stream_deliver_each_nowcast_once(tmp_path, redis_conn):
    sites, steps = [f"site-{i}" for i in range(4)], range(3)
    with receiving(Receiver(SECRET, fail_first=1)) as rx:
        settings = publish_settings(
            tmp_path, [webhook(rx.url), webhook(rx.url, name="mirror")], publish_mode="on_forecast"
        )
        replicas = [publisher(settings, redis_conn, f"replica-{i}") for i in range(2)]
        expected = _ids("hook", sites, steps) | _ids("mirror", sites, steps)
        errors: list[BaseException] = []

        def work(pub):
            try:
                end = time.monotonic() + 30
                while len(rx.accepted) < len(expected) and time.monotonic() < end:
                    pub.process_stream_once(block_ms=50)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(p,)) for p in replicas]
        for t in threads:
            t.start()
        for k in steps:  # forecasts arrive while both replicas read
            for i, site in enumerate(sites):
                store(redis_conn, site, issue(k), seed=i)
        for t in threads:
            t.join(timeout=40)
        assert not errors, errors
        for p in replicas:
            _drain(p)
            p.close()
        assert dict(rx.accepted) == dict.fromkeys(expected, 1)
        assert rx.bad_signatures == 0
        assert _pending(redis_conn) == 0


def test_entries_of_a_dead_replica_are_claimed_and_delivered(tmp_path, redis_conn):
    for k in range(3):
        store(redis_conn, "site-a", issue(k))
    with receiving(Receiver(SECRET)) as rx:
        settings = publish_settings(
            tmp_path, [webhook(rx.url)], publish_mode="on_forecast", publish_claim_idle_ms=200
        )
        survivor = publisher(settings, redis_conn, "survivor")
        survivor.ensure_group()
        # a replica reads the three events, then dies before delivering or acknowledging
        taken = redis_conn.xreadgroup(
            keys.PUBLISH_GROUP, "dead-replica", {keys.FORECAST_EVENTS: ">"}, count=10
        )
        assert len(taken[0][1]) == 3
        assert survivor.process_stream_once() == 0  # nothing new, the orphans not idle yet
        time.sleep(0.3)
        _drain(survivor)
        survivor.close()
        assert dict(rx.accepted) == dict.fromkeys(_ids("hook", ["site-a"], range(3)), 1)
        assert _pending(redis_conn) == 0


def test_a_delivery_locked_by_another_replica_waits_for_it(tmp_path, redis_conn):
    store(redis_conn, "site-a", issue(0))
    with receiving(Receiver(SECRET)) as rx:
        settings = publish_settings(tmp_path, [webhook(rx.url)], publish_mode="on_forecast")
        pub = publisher(settings, redis_conn, "p1")
        job = DeliveryJob("hook", "site-a", "convlstm", issue(0))
        token = pub.state.acquire(job, 5)  # another replica is delivering it now
        assert token is not None
        assert pub.process_stream_once() == 0  # left pending, not acknowledged
        assert _pending(redis_conn) == 1 and not rx.accepted
        pub.state.release(job, token)  # ... and died before it was done
        _drain(pub)
        pub.close()
        assert dict(rx.accepted) == {job.delivery_id: 1} and _pending(redis_conn) == 0


def test_file_subscriber_writes_readable_netcdf_under_a_predictable_name(tmp_path, redis_conn):
    store(redis_conn, "melb-2", issue(4), seed=2)
    forecast = ForecastStore(redis_conn, 3600).get("melb-2", "convlstm", issue(4))  # as stored
    out = tmp_path / "out"
    settings = publish_settings(
        tmp_path,
        [
            {"name": "archive", "kind": "file", "folder": str(out)},
            {"name": "digest", "kind": "file", "folder": str(out), "payload": "summary"},
        ],
        publish_mode="on_forecast",
    )
    pub = publisher(settings, redis_conn, "p1")
    _drain(pub)
    pub.close()
    path = out / "melb-2" / "nowcast_melb-2_convlstm_20260301T1224Z.nc"
    with xr.open_dataset(path, engine="netcdf4") as ds:
        np.testing.assert_allclose(ds["rainfall_rate"].values, forecast.rain_mmh(), atol=1e-4)
        assert ds.attrs["site_id"] == "melb-2" and ds.attrs["Conventions"] == "CF-1.8, ACDD-1.3"
    digest = json.loads(
        (out / "melb-2" / "nowcast_melb-2_convlstm_20260301T1224Z.json").read_text()
    )
    assert digest["delivery_id"] == "digest:melb-2:20260301T122400Z"
    assert sorted(p.name for p in (out / "melb-2").iterdir()) == [
        "nowcast_melb-2_convlstm_20260301T1224Z.json",
        "nowcast_melb-2_convlstm_20260301T1224Z.nc",
    ]  # no temporary file left behind
    assert pub.state.counts() == {"archive": {"delivered": 1}, "digest": {"delivered": 1}}


def test_an_interrupted_write_leaves_the_old_file_whole_and_no_temporary(tmp_path, monkeypatch):
    subscriber = FolderSubscriber("archive", tmp_path, "netcdf")
    job = DeliveryJob("archive", "melb-2", "convlstm", issue(4))
    path = subscriber.path_for(Message(job, b"", "application/x-netcdf", "nc"))
    subscriber.send(Message(job, b"old complete file", "application/x-netcdf", "nc"))

    def disk_full(_fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", disk_full)
    with pytest.raises(DeliveryFailed, match="No space") as failed:
        subscriber.send(Message(job, b"new file, never complete", "application/x-netcdf", "nc"))
    assert failed.value.retryable
    assert path.read_bytes() == b"old complete file"
    assert [p.name for p in path.parent.iterdir()] == [path.name]
