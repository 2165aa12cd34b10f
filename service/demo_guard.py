"""What ``nowcast demo`` checks before it touches anything: one demo per state folder (a lock
held for the demo's life) and a free port.

A second demo on the same checkout used to empty the first one's state folder and only then
find its port taken, which crashed the first demo's ingest and stopped its Redis from saving.
Now the lock is taken first, the port is probed next, and either failure ends the second
demo with one line naming the first (pid, port) before any file is changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from pathlib import Path
from typing import IO

LOCK_NAME = "demo.lock"


class DemoRefused(Exception):
    """The demo cannot start; the message says why and what to do (one line)."""


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (a bind as uvicorn's would fails)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def claim(state_root: Path, host: str, port: int) -> IO[str]:
    """Lock ``state_root/demo.lock`` for this process and check the port; the open lock file
    is returned and must stay open for the demo's life (closing it releases the lock).

    Raises `DemoRefused` when another demo holds the lock or the port is taken.
    """
    state_root.mkdir(parents=True, exist_ok=True)
    handle = open(state_root / LOCK_NAME, "a+")  # noqa: SIM115 (held open on purpose)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = _holder(handle.read())
        handle.close()
        raise DemoRefused(
            f"another demo{holder} is running on {state_root}: stop it first, or give this "
            "one another NOWCAST_DATA_DIR"
        ) from None
    if port_in_use(host, port):
        release(handle)
        raise DemoRefused(f"port {port} on {host} is in use: choose another with --port")
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "host": host, "port": port}))
    handle.flush()
    return handle


def release(handle: IO[str]) -> None:
    """Remove the lock file this demo holds, then release it: nothing is left behind."""
    with contextlib.suppress(OSError):
        os.unlink(handle.name)
    handle.close()


def _holder(text: str) -> str:
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        info = json.loads(text)
        return f" (pid {info['pid']}, port {info['port']})"
    return ""
