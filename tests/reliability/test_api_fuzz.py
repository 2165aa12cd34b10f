"""The HTTP API fuzzed from its own OpenAPI schema with schemathesis, against a live server.

Every operation of ``/openapi.json`` gets generated requests (valid and invalid parameters,
bodies, headers) sent over real HTTP to uvicorn on loopback, backed by the embedded Redis
holding a site with forecasts and frames, so the happy paths are reached too. Every check
schemathesis has runs (``--checks all``): no 5xx; every response as the schema says (status
code, content type, headers, body); schema-valid requests accepted and invalid ones refused,
but for the rules the schema cannot express, which ``schemathesis.toml`` lists (each also
stated in its operation's description).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from core import keys
from core.frame import Frame
from ingest.window import WindowStore
from service.api.app import create_app
from tests.conftest import REPO_ROOT
from tests.service.helpers import API_KEY, service_settings
from tests.service.live_server import serving
from tests.service.publish_helpers import ISSUE_START, issue, store_forecast


@pytest.fixture
def api_schema(tmp_path, redis_conn, small_checkpoint):
    window = WindowStore(redis_conn, 30, 10_000)
    for k in range(6):
        frame = Frame(
            "site-a",
            ISSUE_START - timedelta(minutes=6 * (5 - k)),
            _grey(k),
            "n1-test",
        )
        window.insert(frame, emit_event=False)
    for k in range(2):
        store_forecast(redis_conn, "site-a", issue(k), seed=k)
    # ready (a 503 from /readyz is its documented "not ready", not a fault): a worker with a
    # model has reported, a frame came in just now
    worker = {"model_version": "convlstm-test", "methods": ["convlstm"], "at": time.time()}
    redis_conn.set(f"{keys.INFER_HEALTH}:fuzz", json.dumps(worker), ex=600)
    redis_conn.hset(keys.site_meta("site-a"), "last_ingest_at", datetime.now(UTC).isoformat())
    app = create_app(service_settings(tmp_path / "data", small_checkpoint), redis_conn)
    # frame uploads are files: arbitrary bytes (quarantined with a reason, never a 5xx)
    for media in ("application/x-netcdf", "application/x-hdf5"):
        schemathesis.openapi.media_type(media, st.binary(max_size=4096))
    with serving(app) as base_url:
        config = SchemathesisConfig.from_path(str(REPO_ROOT / "schemathesis.toml"))
        yield schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)


def _grey(k: int):
    import numpy as np

    rows, cols = np.mgrid[0:32, 0:32]
    return (0.6 * np.exp(-((rows - 16) ** 2 + (cols - 10 - k) ** 2) / 20.0)).astype(np.float32)


FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


def _fuzzer(operation, tried: dict[str, int]):
    @FUZZ
    @given(case=operation.as_strategy())
    def fuzz(case):
        case.call_and_validate(headers={"X-API-Key": API_KEY})  # every check
        tried[operation.label] = tried.get(operation.label, 0) + 1

    return fuzz


@pytest.mark.timeout(240)
def test_no_server_error_and_every_response_matches_the_schema(api_schema):
    """Each operation in turn (schemathesis' pytest plugin does not load under pytest 9)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8  # the schema really was read
    tried: dict[str, int] = {}
    for operation in operations:
        _fuzzer(operation, tried)()
    print(f" schemathesis: {sum(tried.values())} requests over {len(tried)} operations")


def test_a_date_time_parameter_takes_only_iso_8601(api_schema):
    """Issue 33, finding 12: ``until=0.5`` was read as a Unix time though the schema says
    date-time."""
    import httpx

    base = api_schema.get_base_url().rstrip("/")
    for params in ({"until": "0.5"}, {"since": "1700000000"}):
        response = httpx.get(f"{base}/v1/verification", params=params)
        assert response.status_code == 422 and "ISO 8601" in response.text, (base, params)
    ok = httpx.get(f"{base}/v1/verification", params={"since": "2026-01-01T00:00:00Z"})
    assert ok.status_code == 200
