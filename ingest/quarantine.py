"""Quarantine: bad frames are kept (never dropped) beside a JSON file saying why."""

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
    path: Path  # where the frame's bytes now are
    reason: RejectReason
    message: str


def safe_file_name(name: str, limit: int = 120) -> str:
    """A file name that cannot leave its folder: base name only, odd characters replaced."""
    base = _SAFE_NAME.sub("_", Path(name).name).lstrip(".")
    return (base or "frame")[:limit]


class Quarantine:
    """``<root>/<YYYYmmdd>/<received stamp>_<name>`` plus ``.reason.json`` beside it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(
        self, raw: bytes, source_name: str, reason: RejectReason, message: str
    ) -> QuarantineRecord:
        now = datetime.now(UTC)
        stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
        target = self.root / now.strftime("%Y%m%d") / f"{stamp}_{safe_file_name(source_name)}"
        write_atomic(target, raw)
        note = {
            "reason": reason.value,
            "message": message,
            "source": source_name,
            "received_at": now.isoformat(),
            "sha256": sha256_bytes(raw),
            "bytes": len(raw),
        }
        write_atomic(
            target.with_name(target.name + ".reason.json"), json.dumps(note, indent=2).encode()
        )
        return QuarantineRecord(target, reason, message)
