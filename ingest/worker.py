"""The ingest worker loop: folders of files, then (``watch``) new files and pushed frames.

Files are taken in valid-time order. Frames pushed by other processes arrive on a Redis stream
(`push_frame`) read through a consumer group; an entry is acknowledged only after its frame is
archived or quarantined, so a crash or a full disk loses nothing. SIGTERM (or Ctrl-C) lets the
current frame finish, then the loop ends; a second signal stops at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from core import keys
from core.worker import StreamWorker
from ingest.ingestor import ArchiveUnavailable, Ingestor, IngestResult
from ingest.multitime import archive_first_time, default_site_id, is_multitime, split_archive
from ingest.reader import FRAME_SUFFIXES, peek_valid_time
from ingest.settings import IngestSettings

log = logging.getLogger(__name__)


def push_frame(
    connection: redis.Redis,
    raw: bytes,
    name: str,
    site_id: str | None = None,
    max_bytes: int | None = None,
) -> str:
    """Hand one raw frame to the ingest workers through the incoming stream; returns its id.

    ``max_bytes``: the ingest's `IngestSettings.max_frame_bytes`; a larger frame raises
    ValueError here, before it takes room on the stream (the ingest would refuse it anyway).
    """
    if max_bytes is not None and len(raw) > max_bytes:
        raise ValueError(f"{name}: {len(raw)} bytes exceeds the frame limit of {max_bytes}")
    fields: dict[str, bytes | str] = {"name": name, "data": raw}
    if site_id:
        fields["site"] = site_id
    entry = connection.xadd(keys.INCOMING_STREAM, fields)
    return entry.decode() if isinstance(entry, bytes) else str(entry)


@dataclass
class WorkerTally:
    """Counts of one worker run, by outcome."""

    by_outcome: dict[str, int] = field(default_factory=dict)

    def add(self, result: IngestResult) -> None:
        self.by_outcome[result.outcome] = self.by_outcome.get(result.outcome, 0) + 1


class IngestWorker(StreamWorker):
    """Runs an `Ingestor` over folders and the incoming stream until told to stop."""

    name = "ingest"

    def __init__(self, ingestor: Ingestor, settings: IngestSettings, settle_s: float = 0.5) -> None:
        super().__init__(ingestor.redis, settings)
        self.ingestor = ingestor
        self.settle_s = settle_s
        self.tally = WorkerTally()
        self._folders: list[Path] = []
        self._site_id: str | None = None

    def heartbeat_key(self) -> str:
        return f"{keys.HEALTH}:{self.consumer}"

    # -- files -----------------------------------------------------------------------------
    def _candidates(self, folders: Iterable[Path]) -> list[Path]:
        now = time.time()
        found = []
        for folder in folders:
            for path in folder.rglob("*"):
                if (
                    path.suffix.lower() in FRAME_SUFFIXES
                    and not path.name.startswith(".")
                    and path.is_file()
                    and now - path.stat().st_mtime >= self.settle_s
                ):
                    found.append(path)
        return found

    @staticmethod
    def _seen_key(path: Path) -> str:
        stat = path.stat()
        return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"

    def new_files(self, folders: Iterable[Path]) -> list[Path]:
        """Files not processed before (by path, size and mtime), in valid-time order."""
        paths = self._candidates(folders)
        if not paths:
            return []
        seen = self.redis.smismember(keys.SEEN_FILES, [self._seen_key(p) for p in paths])
        fresh = [p for p, was_seen in zip(paths, seen, strict=True) if not was_seen]
        timed = [(peek_valid_time(p) or archive_first_time(p), p) for p in fresh]
        # unreadable files (no time) first: they go to quarantine straight away
        timed.sort(
            key=lambda tp: (tp[0] is not None, tp[0].timestamp() if tp[0] else 0, tp[1].name)
        )
        return [p for _, p in timed]

    def ingest_file(self, path: Path, site_id: str | None = None) -> IngestResult | None:
        """Ingest one file and mark it seen; None if the archive was unavailable (retry).

        A multi-time archive (`ingest.multitime`) is a feed of frames in time order: each
        time step is ingested as a frame of its own (archived, windowed or quarantined), and
        the result returned is its last frame's.
        """
        seen_key = self._seen_key(path)
        try:
            if is_multitime(path):
                result = self._ingest_archive(path, site_id)
            else:
                result = self.ingestor.ingest_bytes(path.read_bytes(), str(path), site_id)
                self.tally.add(result)
        except ArchiveUnavailable as exc:
            log.error("%s; left for the next pass", exc)
            return None
        if result is not None:
            self.redis.sadd(keys.SEEN_FILES, seen_key)
        return result

    def _ingest_archive(self, path: Path, site_id: str | None) -> IngestResult | None:
        """Each frame of a multi-time archive through the ingest; None if stopped half-way
        (the file is taken again from its first frame: re-delivery is idempotent)."""
        site = site_id or default_site_id(path)
        result = None
        for name, raw in split_archive(path):
            if self.stopping:
                return None
            result = self.ingestor.ingest_bytes(raw, f"{path}:{name}", site)
            self.tally.add(result)
        return result

    def ingest_folders(self, folders: Iterable[Path], site_id: str | None = None) -> int:
        """Ingest every new file of the folders in time order; returns how many were taken."""
        taken = 0
        for path in self.new_files(folders):
            if self.stopping:
                break
            if self.ingest_file(path, site_id) is not None:
                taken += 1
        return taken

    # -- stream ----------------------------------------------------------------------------
    def ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(
                keys.INCOMING_STREAM, keys.INCOMING_GROUP, id="0", mkstream=True
            )
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def ingest_stream(self, block_ms: int, count: int = 16, claim_idle_ms: int = 60_000) -> int:
        """Process pushed frames: this consumer's pending ones, orphans of dead consumers, new."""
        taken = 0
        entries = self.read_group(
            keys.INCOMING_STREAM, keys.INCOMING_GROUP, claim_idle_ms, count, block_ms
        )
        for entry_id, fields in entries:
            if self.stopping:
                break
            if self._ingest_entry(entry_id, fields):
                taken += 1
        return taken

    def _ingest_entry(self, entry_id: bytes, fields: dict[bytes, bytes]) -> bool:
        name = fields.get(b"name", b"pushed-frame").decode(errors="replace")
        site = fields.get(b"site")
        raw = fields.get(b"data", b"")
        try:
            result = self.ingestor.ingest_bytes(
                raw, f"stream:{entry_id.decode()}:{name}", site.decode() if site else None
            )
        except ArchiveUnavailable as exc:
            log.error("%s; entry %s stays pending", exc, entry_id.decode())
            return False
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(keys.INCOMING_STREAM, keys.INCOMING_GROUP, entry_id)
        pipe.xdel(keys.INCOMING_STREAM, entry_id)  # bytes now live in the archive or quarantine
        pipe.execute()
        self.tally.add(result)
        return True

    # -- loop ------------------------------------------------------------------------------
    def work_once(self, block_ms: int) -> int:
        return self.ingest_folders(self._folders, self._site_id) + self.ingest_stream(block_ms)

    def run_folders(
        self, folders: list[Path], watch: bool, site_id: str | None = None
    ) -> WorkerTally:
        """Ingest the folders; with ``watch`` keep taking new files and pushed frames.

        While watching, Redis going away at any point (the first pass, a heartbeat, a frame
        half-way: archived, not yet windowed) is waited out; the frame is taken again once it
        is back (its file is not marked seen, its entry not acknowledged).
        """
        if not watch:
            self.heartbeat()
            self.ingest_folders(folders, site_id)
        else:
            self._folders, self._site_id = folders, site_id
            log.info("watching %s and stream %s", [str(f) for f in folders], keys.INCOMING_STREAM)
            self.run()
        log.info("ingest worker tally: %s", self.tally.by_outcome)
        return self.tally


def healthy_workers(connection: redis.Redis) -> list[str]:
    """Consumers whose heartbeat key is alive."""
    prefix = f"{keys.HEALTH}:"
    return sorted(k.decode()[len(prefix) :] for k in connection.scan_iter(match=prefix + "*"))
