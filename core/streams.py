"""Reading a Redis stream through a consumer group, the way every worker here does.

`ensure_group` creates the group at the start of the stream (no entry is skipped);
`group_entries` yields, lazily, this consumer's pending entries, those claimed from consumers
idle for ``claim_idle_ms`` (XAUTOCLAIM: a dead worker's), then new ones (blocking up to
``block_ms``). Acknowledging is the caller's: only after the work is done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]  # (entry id, fields); fields {} when trimmed away


def ensure_group(connection: redis.Redis, stream: str, group: str) -> None:
    """Create ``group`` on ``stream`` from its first entry (and the stream if absent)."""
    try:
        connection.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def group_entries(
    connection: redis.Redis,
    stream: str,
    group: str,
    consumer: str,
    claim_idle_ms: int,
    count: int,
    block_ms: int | None = None,
) -> Iterator[Entry]:
    """Pending entries of ``consumer`` (claimed orphans included), then new ones."""
    _next, claimed, *_ = connection.xautoclaim(stream, group, consumer, claim_idle_ms, count=count)
    if claimed:
        log.info("%s: claimed %d entries left pending by another consumer", stream, len(claimed))
    for start in ("0", ">"):
        replies = connection.xreadgroup(
            group,
            consumer,
            {stream: start},
            count=count,
            block=block_ms if start == ">" else None,
        )
        for _stream, entries in replies or []:
            yield from entries


def group_backlog(
    connection: redis.Redis, stream: str, group: str, limit: int = 100_000
) -> tuple[int, int | None]:
    """(entries ``group`` has not acknowledged yet, stream-id milliseconds of the oldest).

    Counts the pending entries (delivered, not acknowledged) and those not yet delivered
    (after the group's last-delivered id; at most ``limit`` are counted). Without the group
    every entry of the stream is backlog. ``(0, None)`` when nothing waits.
    """
    groups = connection.xinfo_groups(stream) if connection.exists(stream) else []
    info = next((g for g in groups if _text(g["name"]) == group), None)
    if info is None:
        first = connection.xrange(stream, count=1)
        return connection.xlen(stream), (_id_ms(first[0][0]) if first else None)
    oldest: list[int] = []
    pending = int(info["pending"])
    if pending:  # read again: entries may have been acknowledged in between
        summary = connection.xpending(stream, group)
        pending = int(summary["pending"])
        if pending and summary["min"] is not None:
            oldest.append(_id_ms(summary["min"]))
    after = connection.xrange(stream, min=f"({_text(info['last-delivered-id'])}", count=limit)
    if after:
        oldest.append(_id_ms(after[0][0]))
    return pending + len(after), (min(oldest) if oldest else None)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _id_ms(entry_id: bytes | str) -> int:
    """The millisecond part of a stream entry id (``<ms>-<seq>``)."""
    return int(_text(entry_id).split("-", 1)[0])
