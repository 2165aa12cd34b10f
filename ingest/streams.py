"""Reading a Redis stream through a consumer group, the way every worker here does.

`ensure_group` creates the group at the start of the stream (no entry is skipped);
`group_entries` yields, lazily, this consumer's pending entries, those claimed from consumers
idle for ``claim_idle_ms`` (XAUTOCLAIM: a dead worker's), then new ones (blocking up to
``block_ms``). Acknowledging is the caller's: only after the work is done.
"""

from __future__ import annotations

from collections.abc import Iterator

import redis

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
    connection.xautoclaim(stream, group, consumer, claim_idle_ms, count=count)
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
