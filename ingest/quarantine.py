"""Quarantine: bad frames are kept beside a JSON file saying why.

The folder is bounded (``max_bytes``): once it holds that much, a further frame's note is still
written (reason, source, size and SHA-256, ``"kept": false``) but not its bytes, so that a
stream of hostile uploads cannot fill the disk; the operator empties it after reading it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.files import sha256_bytes, write_atomic
from core.frame import RejectReason

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class QuarantineRecord:
    path: Path  # where the frame's bytes now are (or would be, when not kept)
    reason: RejectReason
    message: str
    kept: bool = True  # False: the quarantine was full, only the note was written


def safe_file_name(name: str, limit: int = 120) -> str:
    """A file name that cannot leave its folder: base name only, odd characters replaced."""
    base = _SAFE_NAME.sub("_", Path(name).name).lstrip(".")
    return (base or "frame")[:limit]


class Quarantine:
    """``<root>/<YYYYmmdd>/<received stamp>_<name>`` plus ``.reason.json`` beside it;
    ``max_bytes``: the most the folder holds before frames are noted but not kept."""

    def __init__(self, root: Path, max_bytes: int | None = None) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._used_bytes: int | None = None  # measured once, then kept up to date

    def used_bytes(self) -> int:
        """Bytes under the folder (measured at the first call, counted after)."""
        if self._used_bytes is None:
            files = self.root.rglob("*") if self.root.is_dir() else iter(())
            self._used_bytes = sum(p.stat().st_size for p in files if p.is_file())
        return self._used_bytes

    def put(
        self, raw: bytes, source_name: str, reason: RejectReason, message: str
    ) -> QuarantineRecord:
        now = datetime.now(UTC)
        stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
        target = self.root / now.strftime("%Y%m%d") / f"{stamp}_{safe_file_name(source_name)}"
        kept = self.max_bytes is None or self.used_bytes() + len(raw) <= self.max_bytes
        if kept:
            write_atomic(target, raw)
        note = {
            "reason": reason.value,
            "message": message,
            "source": source_name,
            "received_at": now.isoformat(),
            "sha256": sha256_bytes(raw),
            "bytes": len(raw),
            "kept": kept,
        }
        if not kept:
            note["not_kept_because"] = f"the quarantine holds {self.max_bytes} bytes already"
        text = json.dumps(note, indent=2).encode()
        write_atomic(target.with_name(target.name + ".reason.json"), text)
        self._used_bytes = self.used_bytes() + (len(raw) if kept else 0) + len(text)
        return QuarantineRecord(target, reason, message, kept)
