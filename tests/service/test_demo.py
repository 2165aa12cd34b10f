"""``nowcast demo`` as a new user runs it: a real process, real HTTP, Ctrl-C to stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.service.live_server import free_port


def _wait_for(predicate, timeout_s: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"demo exited early: {process.stdout.read()}")
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("timed out waiting for the demo")


def test_demo_serves_moving_forecasts_and_verification_then_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOWCAST_")}
    env.update(NOWCAST_DATA_DIR=str(tmp_path), OMP_NUM_THREADS="1")
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "demo", "--port", str(port), "--speed", "360"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        latest = f"{base}/v1/sites/synth-01/nowcast/latest?frames=false"
        _wait_for(lambda: httpx.get(latest).status_code == 200, 120, process)
        first = httpx.get(latest).json()["issue_time"]

        def verified() -> bool:
            body = httpx.get(f"{base}/v1/verification").json()
            return body["methods"]["convlstm"]["n_cells"][0] > 0

        _wait_for(verified, 60, process)
        _wait_for(lambda: httpx.get(latest).json()["issue_time"] != first, 60, process)
        page = httpx.get(f"{base}/")
        assert page.headers["content-type"].startswith("text/html")
        assert page.text.lower().startswith("<!doctype html")
        assert httpx.get(f"{base}/readyz").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert f"dashboard: http://127.0.0.1:{port}/" in output
    assert "demo stopped" in output
    state = tmp_path / "demo"
    assert (state / "redis" / "nowcast.rdb").exists(), "the embedded Redis saves its state on stop"
    assert any((state / "archive").rglob("*.nc")), "raw frames are archived"


def _redis_servers() -> set[int]:
    """Pids of the running redis-server processes (from /proc)."""
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"redis-server" in cmdline.read_bytes():
                found.add(int(cmdline.parent.name))
        except (OSError, ValueError):
            continue
    return found


def test_sigterm_stops_the_demo_its_workers_and_its_embedded_redis(tmp_path):
    port = free_port()
    before = _redis_servers()
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "demo", "--port", str(port), "--speed", "360"],
        env=_demo_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        latest = f"http://127.0.0.1:{port}/v1/sites/synth-01/nowcast/latest?frames=false"
        _wait_for(lambda: httpx.get(latest).status_code == 200, 120, process)
        embedded = _redis_servers() - before
        assert embedded, "the demo runs its own redis-server"
        process.send_signal(signal.SIGTERM)  # as a container runtime or systemd stops it
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "demo stopped" in output
    assert "inference worker" in output and "stopped" in output
    time.sleep(0.5)
    assert not embedded & _redis_servers(), "the embedded redis-server is stopped"
    assert (tmp_path / "demo" / "redis" / "nowcast.rdb").exists(), "Redis saved its state"


@pytest.mark.parametrize("speed", ["0", "-1"])
def test_demo_refuses_a_speed_below_one(speed):
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "demo", "--speed", speed],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "speed" in result.stderr.lower()


def _demo_env(data_dir) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOWCAST_")}
    env.update(NOWCAST_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1")
    env.pop("REDIS_URL", None)
    return env


def test_a_second_demo_fails_at_once_naming_the_first_and_changes_nothing(tmp_path):
    port = free_port()
    argv = [sys.executable, "-m", "service.cli", "demo", "--port", str(port), "--speed", "360"]
    first = subprocess.Popen(
        argv, env=_demo_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, 120, first)
        archived = sorted((tmp_path / "demo" / "archive").rglob("*.nc"))
        # the same checkout (state folder) and port: refused before anything is touched
        second = subprocess.run(argv, env=_demo_env(tmp_path), capture_output=True, text=True,
                                timeout=60)  # fmt: skip
        assert second.returncode == 2
        message = second.stderr.strip()
        assert "\n" not in message and "Traceback" not in message
        assert f"pid {first.pid}, port {port}" in message
        # another state folder but the same port: the port is named
        third = subprocess.run(argv, env=_demo_env(tmp_path / "other"), capture_output=True,
                               text=True, timeout=60)  # fmt: skip
        assert third.returncode == 2 and f"port {port}" in third.stderr
        assert "--port" in third.stderr and not (tmp_path / "other" / "demo").exists()
        # the first demo is untouched and still healthy
        assert (tmp_path / "demo" / "incoming").is_dir()
        assert set(archived) <= set((tmp_path / "demo" / "archive").rglob("*.nc"))
        assert httpx.get(f"{base}/readyz").status_code == 200
    finally:
        first.send_signal(signal.SIGINT)
        output, _ = first.communicate(timeout=60)
    assert first.returncode == 0 and "demo stopped" in output, output
    assert "FileNotFoundError" not in output and "MISCONF" not in output
    assert not (tmp_path / "demo.lock").exists(), "a stopped demo leaves no lock behind"
    assert not (tmp_path / "other" / "demo.lock").exists(), "nor does a refused one"


def _start_demo(tmp_path, port: int) -> subprocess.Popen:
    argv = [sys.executable, "-m", "service.cli", "demo", "--port", str(port), "--speed", "360"]
    process = subprocess.Popen(
        argv, env=_demo_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    latest = f"http://127.0.0.1:{port}/v1/sites/synth-01/nowcast/latest?frames=false"
    _wait_for(lambda: httpx.get(latest).status_code == 200, 120, process)
    return process


def test_a_closed_terminal_stops_the_demo_as_ctrl_c_does_within_seconds(tmp_path):
    """Issue 33, findings 9 and 10: SIGHUP left redis-server behind; Ctrl-C took 40 s."""
    before = _redis_servers()
    process = _start_demo(tmp_path, free_port())
    try:
        embedded = _redis_servers() - before
        assert embedded
        process.send_signal(signal.SIGHUP)
        output, _ = process.communicate(timeout=20)  # a stop bounded by seconds, not 30 s
    finally:
        process.kill()
    assert process.returncode == 0 and "demo stopped" in output, output
    assert "ERROR" not in output, output
    time.sleep(0.5)
    assert not embedded & _redis_servers(), "the embedded redis-server is stopped"


def test_a_killed_demo_takes_its_embedded_redis_with_it(tmp_path):
    """Issue 33, finding 9: after SIGKILL of the demo its redis-server ran on (parent pid 1)."""
    before = _redis_servers()
    process = _start_demo(tmp_path, free_port())
    embedded = _redis_servers() - before
    assert embedded
    process.kill()
    process.communicate(timeout=20)
    deadline = time.monotonic() + 10
    while embedded & _redis_servers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not embedded & _redis_servers(), "the embedded redis-server outlived the demo"


def test_the_synthetic_feed_waits_for_the_pipeline(tmp_path):
    """Issue 33, finding 11: the synthetic radar ran hours ahead of the last issue time."""
    port = free_port()
    process = _start_demo(tmp_path, port)
    try:
        time.sleep(8)  # a few frames' worth at --speed 360 (one every second)
        sites = httpx.get(f"http://127.0.0.1:{port}/v1/sites").json()
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    (site,) = sites
    newest = datetime.fromisoformat(site["newest_frame"])
    issued = datetime.fromisoformat(site["last_issue_time"])
    assert newest - issued <= timedelta(minutes=2 * 6), (newest, issued)


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_a_missing_or_empty_frames_folder_is_one_line_and_exit_2(tmp_path, make):
    folder = tmp_path / "frames"
    if make == "empty":
        folder.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "demo", "--frames", str(folder)],
        env=_demo_env(tmp_path / "data"), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert str(folder) in message and "give a folder of radar frames" in message
    assert not (tmp_path / "data" / "demo").exists()


def test_run_sh_without_a_verb_prints_its_usage():
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "run.sh"
    result = subprocess.run([str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "usage: ./run.sh {demo|test|setup|lock}" in result.stderr and not result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["ingest", "/nonexistent/frames"],
        ["evaluate", "/nonexistent/events", "--method", "extrapolation"],
        ["normalize", "/nonexistent/frame.nc", "--out", "/tmp/out.npy"],
        ["serve", "--port", "70000"],
        ["evaluate", ".", "--method", "no-such-method"],
    ],
)
def test_user_errors_on_the_command_line_are_one_line_and_exit_2(argv):
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", *argv], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()
    assert len(message) == 1 and "Traceback" not in result.stderr, result.stderr
    assert message[0].startswith(f"nowcast {argv[0]}: ") and "--help" in message[0]


def test_nowcast_serve_takes_its_embedded_redis_with_it_on_sigterm(tmp_path):
    """Issue 33, finding 9: ``nowcast serve`` left its embedded redis-server on SIGTERM."""
    port = free_port()
    before = _redis_servers()
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env=_demo_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200, 60,
                  process)  # fmt: skip
        embedded = _redis_servers() - before
        assert embedded, "serve runs its own redis-server"
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        process.kill()
    deadline = time.monotonic() + 10
    while embedded & _redis_servers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not embedded & _redis_servers(), "the embedded redis-server outlived nowcast serve"
