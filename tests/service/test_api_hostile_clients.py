"""Clients that leave or stall (issue 33, findings 4 and 7), against a real uvicorn server."""

from __future__ import annotations

import logging
import socket
import time

import httpx
import pytest

from service.api.app import create_app
from service.api.slow_clients import HeaderTimeoutProtocol
from tests.ingest.helpers import small_settings
from tests.service.helpers import API_KEY
from tests.service.live_server import serving


@pytest.fixture
def app(tmp_path, redis_conn):
    settings = small_settings(
        tmp_path / "data", api_keys=[API_KEY], http_header_timeout_s=1.0, http_body_timeout_s=1.0
    )
    return create_app(settings, redis_conn)


def _raw_upload(base: str, site: str, declared: int, sent: int) -> socket.socket:
    """A connection that POSTs a frame declaring ``declared`` bytes and sends ``sent``."""
    host, port = base.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)))
    client.sendall(
        f"POST /v1/sites/{site}/frames HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
        f"Content-Type: application/x-netcdf\r\nContent-Length: {declared}\r\n\r\n".encode()
        + b"\0" * sent
    )
    return client


def _closed_by_server(client: socket.socket, within_s: float) -> bool:
    """Whether the server closes ``client`` (an empty read) within ``within_s`` seconds."""
    client.settimeout(within_s)
    try:
        while True:
            data = client.recv(4096)
            if not data:
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_connections_without_complete_headers_are_closed(app):
    """Partial headers, or nothing at all, were held with no time limit (1,000 fds)."""
    with serving(app, http=HeaderTimeoutProtocol) as base:
        host, port = base.removeprefix("http://").split(":")
        silent = socket.create_connection((host, int(port)))
        partial = socket.create_connection((host, int(port)))
        partial.sendall(b"GET /v1/sites HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        try:
            assert _closed_by_server(silent, within_s=10)
            assert _closed_by_server(partial, within_s=10)
            assert httpx.get(f"{base}/v1/sites").status_code == 200  # others are served
        finally:
            silent.close()
            partial.close()


def test_an_upload_whose_body_never_ends_is_refused_in_time(app, tmp_path):
    """A Content-Length that is never sent held the request (and its memory) forever."""
    with (
        serving(app, http=HeaderTimeoutProtocol) as base,
        _raw_upload(base, "slow-1", declared=50_000, sent=100) as client,
    ):
        client.settimeout(10)
        answer = client.recv(4096).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 408"), answer
    assert "did not arrive whole within 1 s" in answer
    assert not list((tmp_path / "data").rglob("*.nc"))


def _frames_requests(base: str, status: str) -> float:
    """How many POST /v1/sites/{site}/frames requests /metrics counts with ``status``."""
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if (
            line.startswith("nowcast_http_request_duration_seconds_count{")
            and 'route="/v1/sites/{site}/frames"' in line
            and f'status="{status}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_client_leaving_mid_upload_is_no_server_error(app, tmp_path, caplog):
    """It logged an ERROR traceback and counted as status 500, feeding the API error alert."""
    caplog.set_level(logging.INFO)
    with serving(app) as base:
        with _raw_upload(base, "gone-1", declared=50_000, sent=1000):
            time.sleep(0.3)
        deadline = time.monotonic() + 10
        while _frames_requests(base, "499") < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _frames_requests(base, "499") == 1
        assert _frames_requests(base, "500") == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "abandoned by the client after 1000 bytes" in caplog.text
    assert not list((tmp_path / "data").rglob("*.nc"))  # nothing archived or quarantined
