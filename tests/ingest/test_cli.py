"""The ``nowcast`` command as users run it: real processes, a real Redis, real files."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import numpy as np
import pytest

from ingest.cf_writer import write_cf_frame
from tests.ingest.helpers import START

VERBS = ["ingest", "push", "synth", "normalize", "fit-mask", "status", "demo"]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180):
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cli_env(tmp_path, redis_url):
    return {
        "REDIS_URL": redis_url,
        "NOWCAST_DATA_DIR": str(tmp_path / "data"),
        "NOWCAST_CROP_CELLS": "64",
        "NOWCAST_TARGET_CELLS": "32",
    }


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(verb):
    result = run_cli(verb, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_misspelled_setting_is_refused(cli_env):
    result = run_cli("status", env={**cli_env, "NOWCAST_WINDOW_FRAMEZ": "10"})
    assert result.returncode != 0
    assert "NOWCAST_WINDOW_FRAMEZ" in result.stdout + result.stderr


def test_synth_ingest_status_and_rebuild(tmp_path, cli_env, redis_conn):
    feed = tmp_path / "feed"
    result = run_cli("synth", str(feed), "--frames", "8", "--cadence-min", "5", "--site", "s-9")
    assert result.returncode == 0, result.stderr
    assert len(list(feed.glob("s-9_*.nc"))) == 8
    result = run_cli("ingest", str(feed), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "'accepted': 8" in result.stdout
    status = run_cli("status", env=cli_env)
    assert status.returncode == 0, status.stderr
    line = next(row for row in status.stdout.splitlines() if row.startswith("s-9"))
    assert line.split()[1] == "8" and "5 min" in line and "none (unmasked)" in line
    redis_conn.flushall()
    assert "no site" in run_cli("status", env=cli_env).stdout
    rebuilt = run_cli("ingest", "--rebuild", env=cli_env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt s-9: 8 frames" in rebuilt.stdout
    assert run_cli("status", env=cli_env).stdout.splitlines()[1].split()[1] == "8"


def test_status_reports_gaps(tmp_path, cli_env):
    feed = tmp_path / "feed"
    feed.mkdir()
    for i in (0, 1, 2, 4):
        t = START + timedelta(minutes=6 * i)
        write_cf_frame(feed / f"f{i}.nc", np.ones((96, 96)), t, "g-1", "rain_rate")
    assert run_cli("ingest", str(feed), env=cli_env).returncode == 0
    out = run_cli("status", env=cli_env).stdout
    assert "g-1 missing: 2026-01-01T00:18Z" in out


def test_normalize_writes_the_grey_frame(tmp_path):
    path = tmp_path / "f.nc"
    rain = np.zeros((400, 400), np.float32)
    rain[150:250, 150:250] = 10.0
    write_cf_frame(path, rain, START, "n-1", "rain_rate")
    out = tmp_path / "grey.npy"
    result = run_cli("normalize", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    grey = np.load(out, allow_pickle=False)
    assert grey.shape == (100, 100) and grey.dtype == np.float32
    # 10 mm/h = 39.0 dBZ -> grey 0.6125 in the middle of the block, 0 far from it
    assert grey[50, 50] == pytest.approx((10 * np.log10(200 * 10**1.6) + 10) / 80, abs=1e-3)
    assert grey[0, 0] == 0.0


def test_normalize_rejects_a_bad_file_with_a_clear_error(tmp_path):
    path = tmp_path / "bad.nc"
    path.write_bytes(b"nope")
    result = run_cli("normalize", str(path), "--out", str(tmp_path / "x.npy"))
    assert result.returncode == 2
    assert "unreadable" in result.stderr


def test_push_reaches_the_incoming_stream(tmp_path, cli_env, redis_conn):
    path = tmp_path / "f.nc"
    write_cf_frame(path, np.ones((96, 96)), START, "p-1", "rain_rate")
    result = run_cli("push", str(path), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert redis_conn.xlen("nowcast:ingest:incoming") == 1


def test_push_refuses_a_file_over_the_frame_limit_before_it_reaches_the_stream(
    tmp_path, cli_env, redis_conn
):
    """Issue 33, finding 4: a 100 MB file went onto the Redis stream before ingest refused it."""
    path = tmp_path / "huge.nc"
    path.write_bytes(b"\0" * 4096)
    result = run_cli("push", str(path), env={**cli_env, "NOWCAST_MAX_FRAME_BYTES": "2048"})
    assert result.returncode == 2, result.stdout
    assert "frame limit of 2048 bytes" in result.stderr
    assert redis_conn.xlen("nowcast:ingest:incoming") == 0
