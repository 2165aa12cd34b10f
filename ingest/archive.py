"""Append-only archive of every accepted raw frame, so the window can be rebuilt from disk.

Layout: ``<root>/<site>/<YYYY>/<MM>/<DD>/<site>_<YYYYmmddTHHMMSSZ>.nc`` holding the bytes as
received. A file is never overwritten: a second delivery of the same site and time is a
duplicate (same bytes) or a conflict (other bytes), and the first one stays.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from core.files import sha256_bytes, write_atomic


class ArchiveOutcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


class Archive:
    """Raw frames on disk, keyed by site and valid time (UTC)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, site_id: str, valid_time: datetime) -> Path:
        stamp = valid_time.strftime("%Y%m%dT%H%M%SZ")
        day = valid_time.strftime("%Y/%m/%d")
        return self.root / site_id / day / f"{site_id}_{stamp}.nc"

    def store(self, site_id: str, valid_time: datetime, raw: bytes) -> ArchiveOutcome:
        """Keep ``raw`` unless this site and time are archived already (then compare bytes)."""
        path = self.path_for(site_id, valid_time)
        if path.exists():
            same = sha256_bytes(path.read_bytes()) == sha256_bytes(raw)
            return ArchiveOutcome.DUPLICATE if same else ArchiveOutcome.CONFLICT
        write_atomic(path, raw)
        return ArchiveOutcome.STORED

    def sites(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def frames(self, site_id: str) -> Iterator[Path]:
        """Archived files of a site in valid-time order (names sort by time)."""
        site_root = self.root / site_id
        if site_root.is_dir():
            yield from sorted(site_root.glob("*/*/*/*.nc"), key=lambda p: p.name)
