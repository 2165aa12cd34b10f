"""Security: keys on every write route, no way out of the data folders, upload limits, signed
and fresh webhooks, checkpoints that cannot run code, and no secret in logs or error bodies.

Write routes are enumerated from the app's OpenAPI schema (every operation that is not a
GET), so a write route added later is covered without editing this file.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from core import keys
from core.frame import RejectReason
from ingest.cf_writer import write_synthetic_feed
from ingest.ingestor import Ingestor
from ingest.worker import IngestWorker, push_frame
from model.nets.checkpoint import load_checkpoint
from service.api.app import create_app
from service.publish.signing import SignatureError, verify
from tests.conftest import REPO_ROOT
from tests.ingest.helpers import small_settings
from tests.reliability.procs import nowcast, run_nowcast, wait_healthy
from tests.service.helpers import API_KEY
from tests.service.live_server import free_port
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

READ_METHODS = {"get", "head", "options"}
HOSTILE_SITES = ["../../escaped", "..", "a/../../b", "/etc", "A B", "x" * 65, "-lead", "é"]


@pytest.fixture
def feed(tmp_path) -> list[Path]:
    return write_synthetic_feed(tmp_path / "feed", 2, site_id="sec-1", shape=(96, 96), seed=1)


@pytest.fixture
def app(tmp_path, redis_conn):
    settings = small_settings(tmp_path / "data", api_keys=[API_KEY], max_frame_bytes=64 * 1024)
    return create_app(settings, redis_conn)


def _write_operations(app) -> list[tuple[str, str]]:
    schema = app.openapi()
    return [
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method not in READ_METHODS
    ]


def _fill(path: str) -> str:
    return path.replace("{site}", "sec-1")


def _files_outside(root: Path, *allowed: Path) -> list[Path]:
    """Files under ``root`` that are in none of the ``allowed`` folders."""
    return [p for p in root.rglob("*") if p.is_file() and not any(a in p.parents for a in allowed)]


# -- API keys ----------------------------------------------------------------------------------


def test_every_write_route_needs_a_valid_key_before_it_reads_the_body(app, feed):
    operations = _write_operations(app)
    assert ("POST", "/v1/sites/{site}/frames") in operations  # the enumeration finds them
    # every non-GET route of the app (not only those in the schema) is in the schema
    routed = {
        (m, r.path)
        for r in app.routes
        for m in getattr(r, "methods", set())
        if m.lower() not in READ_METHODS
    }
    assert routed <= set(operations)
    oversized = b"\0" * (128 * 1024)
    with TestClient(app) as client:
        for method, path in operations:
            url = _fill(path)
            for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": API_KEY[:-1]}):
                for body in (feed[0].read_bytes(), oversized, b""):
                    response = client.request(method, url, content=body, headers=headers)
                    assert response.status_code == 401, (method, path, headers, response.text)
                    assert response.headers["www-authenticate"] == "ApiKey"
            accepted = client.request(
                method, url, content=feed[0].read_bytes(), headers={"X-API-Key": API_KEY}
            )
            assert accepted.status_code not in (401, 403, 500), accepted.text


def test_upload_size_limit_with_and_without_a_declared_length(app, feed, tmp_path):
    limit = app.state.ctx.settings.max_frame_bytes
    big = feed[0].read_bytes() * (limit // len(feed[0].read_bytes()) + 2)
    assert len(big) > limit

    def chunks():
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    with TestClient(app) as client:
        url = "/v1/sites/sec-1/frames"
        declared = client.post(url, content=big, headers={"X-API-Key": API_KEY})
        assert declared.status_code == 413 and str(limit) in declared.json()["detail"]
        streamed = client.post(url, content=chunks(), headers={"X-API-Key": API_KEY})
        assert streamed.status_code == 413
        lying = client.post(
            url, content=big, headers={"X-API-Key": API_KEY, "Content-Length": "100"}
        )
        assert lying.status_code in (400, 413, 422)  # never accepted
    assert not list((tmp_path / "data").rglob("*.nc"))  # nothing archived or quarantined


# -- folders -----------------------------------------------------------------------------------


@pytest.mark.parametrize("site", HOSTILE_SITES)
def test_site_ids_from_http_cannot_leave_the_data_folder(app, feed, tmp_path, site):
    quoted = httpx.URL(f"http://x/v1/sites/{site}/frames").raw_path.decode()
    encoded = "/v1/sites/" + site.replace("/", "%2F").replace(" ", "%20") + "/frames"
    with TestClient(app) as client:
        for url in {quoted, encoded}:
            response = client.post(
                url, content=feed[0].read_bytes(), headers={"X-API-Key": API_KEY}
            )
            assert response.status_code in (404, 405, 422), (url, response.text)
            got = client.get(url.replace("/frames", "/nowcast/latest"))
            assert got.status_code in (404, 422), (url, got.text)
    assert not _files_outside(tmp_path, tmp_path / "data" / "quarantine", tmp_path / "feed")
    assert not list((tmp_path / "data").rglob("archive/**/*.nc"))


@pytest.mark.parametrize("site", HOSTILE_SITES[:4])
def test_a_hostile_site_named_by_the_caller_is_quarantined_not_archived_outside(
    tmp_path, redis_conn, feed, site
):
    """Regression: a site given with a pushed frame (or --site) was used as a folder name
    unchecked; ``../../escaped`` archived the frame outside the archive."""
    settings = small_settings(tmp_path / "data")
    ingestor = Ingestor(settings, redis_conn)
    result = ingestor.ingest_bytes(feed[0].read_bytes(), "direct.nc", site_id=site)
    assert (result.outcome, result.reason) == ("quarantined", RejectReason.NO_SITE)
    assert site in result.message

    worker = IngestWorker(ingestor, settings, settle_s=0.0)
    push_frame(redis_conn, feed[1].read_bytes(), "../../pushed.nc", site)
    assert worker.ingest_stream(block_ms=10) == 1
    assert worker.tally.by_outcome == {"quarantined": 1}
    assert redis_conn.xlen(keys.INCOMING_STREAM) == 0  # taken: its bytes are in quarantine

    assert not _files_outside(tmp_path, tmp_path / "data" / "quarantine", tmp_path / "feed")
    assert not list(settings.archive_path.rglob("*.nc"))
    assert len(list(settings.quarantine_path.glob("*/*.reason.json"))) == 2
    assert redis_conn.smembers(keys.SITES) == set()
    assert not [k for k in redis_conn.scan_iter("*") if b".." in k or b"/" in k]


# -- webhooks ----------------------------------------------------------------------------------


def test_a_delivered_webhook_cannot_be_replayed_later_or_altered(tmp_path, redis_conn):
    store_forecast(redis_conn, "site-a", issue(0))
    with receiving(Receiver(SECRET)) as rx:
        settings = publish_settings(tmp_path, [webhook(rx.url)], publish_mode="on_forecast")
        pub = publisher(settings, redis_conn, "sec")
        while pub.process_stream_once() > 0:
            pass
        pub.close()
    ((delivery_id, body),) = rx.bodies.items()
    headers = rx.headers[delivery_id]
    sent_at = int(headers["webhook-timestamp"])
    verify(SECRET, headers, body, sent_at + 1)  # as sent: fine
    for now in (sent_at + 301, sent_at - 301):  # replayed 5 min later, or a clock far off
        with pytest.raises(SignatureError):
            verify(SECRET, headers, body, now)
    altered = body.replace(b'"site-a"', b'"site-b"')
    assert altered != body
    with pytest.raises(SignatureError):
        verify(SECRET, headers, altered, sent_at)
    with pytest.raises(SignatureError):
        verify(OTHER_SECRET, headers, body, sent_at)
    # re-signing under a new timestamp or another delivery's id needs the secret
    retimed = {**headers, "webhook-timestamp": str(sent_at + 600)}
    for forged, now in ((retimed, sent_at + 600), ({**headers, "webhook-id": "x:y:z"}, sent_at)):
        with pytest.raises(SignatureError, match="does not match"):
            verify(SECRET, forged, body, now)
    assert SECRET.encode() not in body


# -- checkpoints -------------------------------------------------------------------------------


class _Payload:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickled_checkpoint_is_refused_without_running_its_code(tmp_path):
    marker = tmp_path / "code-ran"
    as_pickle = tmp_path / "pickle.safetensors"
    as_pickle.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    as_torch = tmp_path / "torch.safetensors"
    torch.save({"state_dict": _Payload(marker)}, as_torch)
    for path in (as_pickle, as_torch):
        with pytest.raises(ValueError):
            load_checkpoint(path)
    assert not marker.exists()
    pickle.loads(as_pickle.read_bytes())  # the payload is live: loading it with pickle runs it
    assert marker.exists()


def _unsafe_loads(tree: ast.AST) -> list[str]:
    """Calls that can unpickle: pickle/dill/joblib loads, torch.load without weights_only=True,
    numpy.load with allow_pickle=True."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = ast.unparse(node.func.value)
        name = node.func.attr
        kwargs = {k.arg: ast.unparse(k.value) for k in node.keywords}
        if owner in ("pickle", "dill", "joblib", "cloudpickle") and name in ("load", "loads"):
            found.append(f"{owner}.{name}")
        elif owner == "torch" and name == "load" and kwargs.get("weights_only") != "True":
            found.append("torch.load without weights_only=True")
        elif owner in ("np", "numpy") and name == "load" and kwargs.get("allow_pickle") == "True":
            found.append("np.load(allow_pickle=True)")
    return found


def test_no_package_code_can_unpickle():
    offenders = {}
    for package in ("ingest", "model", "service"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            unsafe = _unsafe_loads(ast.parse(path.read_text(), str(path)))
            if unsafe:
                offenders[str(path.relative_to(REPO_ROOT))] = unsafe
    assert offenders == {}
    # the check itself finds them
    assert _unsafe_loads(ast.parse("import torch\ntorch.load('x')")) == [
        "torch.load without weights_only=True"
    ]


# -- secrets in logs and error bodies (real processes) -------------------------------------------


def _env(tmp_path: Path, redis_url: str, subscribers: list[dict[str, object]]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOWCAST_")}
    env.update(
        REDIS_URL=redis_url,
        NOWCAST_DATA_DIR=str(tmp_path / "data"),
        NOWCAST_API_KEYS=json.dumps([API_KEY]),
        NOWCAST_SUBSCRIBERS=json.dumps(subscribers),
        NOWCAST_MAX_FRAME_BYTES="65536",
        NOWCAST_PUBLISH_BACKOFF_S="0.01",
        NOWCAST_PUBLISH_BACKOFF_MAX_S="0.02",
        NOWCAST_PUBLISH_MAX_ATTEMPTS="2",
        NOWCAST_PUBLISH_TIMEOUT_S="2",
    )
    return env


@pytest.mark.timeout(180)
def test_no_secret_reaches_logs_or_error_bodies(tmp_path, redis_conn, redis_url, feed):
    token = "tok-" + "9" * 24  # a token in the subscriber's URL is a secret too
    store_forecast(redis_conn, "site-a", issue(0))
    with receiving(Receiver(SECRET, down=True)) as rx:
        url = f"{rx.url}?token={token}"
        env = _env(tmp_path, redis_url, [webhook(url)])
        secrets = [API_KEY, SECRET, token]
        bodies: list[str] = []

        publish = run_nowcast(["--log-level", "DEBUG", "publish", "--once"], env)
        assert "dead_lettered" in publish.stdout + publish.stderr  # it really tried
        assert sum(rx.attempts.values()) == 2

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        serve = ["--log-level", "DEBUG", "serve", "--port", str(port)]
        with nowcast(serve, env, tmp_path / "serve.log") as server:
            wait_healthy(base, 60, server.proc)
            frames = f"{base}/v1/sites/sec-1/frames"
            with httpx.Client(timeout=30) as client:
                for headers, body in [
                    ({"X-API-Key": API_KEY[:-1]}, feed[0].read_bytes()),
                    ({"X-API-Key": API_KEY + "x"}, feed[0].read_bytes()),
                    ({"X-API-Key": API_KEY}, b"junk" * 10),
                    ({"X-API-Key": API_KEY}, b"\0" * 70_000),
                    ({"X-API-Key": API_KEY}, feed[0].read_bytes()),
                    ({"X-API-Key": API_KEY}, feed[0].read_bytes()),  # duplicate
                ]:
                    bodies.append(client.post(frames, content=body, headers=headers).text)
                bodies.append(client.get(f"{base}/v1/publishing").text)
                bodies.append(client.get(f"{base}/v1/sites").text)
                bodies.append(client.get(f"{base}/readyz").text)
                bodies.append(client.get(f"{base}/metrics").text)
                bodies.append(client.get(f"{base}/openapi.json").text)
    assert "HTTP 503" in bodies[6]  # the dead letter is shown, with its reason
    logs = publish.stdout + publish.stderr + (tmp_path / "serve.log").read_text()
    for secret in secrets:
        assert secret not in logs
        for body in bodies:
            assert secret not in body
    assert rx.url.split("/hook")[0] not in bodies[6]  # nor the subscriber's address
