"""Small file helpers shared by the archive, quarantine, mask store and the methods' versions."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path, length: int = 12) -> str:
    """First ``length`` hex digits of the SHA-256 of a file (a checkpoint's version), read in
    1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a synced temp file in the same folder, then rename.

    A reader never sees a half-written file; a crash leaves either the old file or the new.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
