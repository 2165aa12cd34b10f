"""The rolling window per site in Redis: the last N normalised frames, ordered by valid time.

Inserts are one Lua script (atomic): a re-delivered time is left as it is, a frame older than
a full window, or older than the site's newest frame by more than the window's span, is refused
without touching it, the oldest frames beyond N are dropped, and an event (site, valid time)
is appended to the frames stream for the inference worker. A stray date (a frame of 1970)
after a site's frames is thus archived only; one before them stays until N newer frames push
it out, and every report on the window's gaps is bounded whatever its span: the newest N
missing slots are listed, all are counted (`missing_slots`, `count_missing_slots`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import pairwise

import redis

from core import keys
from core.frame import Frame
from core.settings import CoreSettings
from ingest.codec import decode_frame, encode_frame

_INSERT_LUA = """
local times, frames, events, sites = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local epoch, blob, n, site = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
if redis.call('HEXISTS', frames, epoch) == 1 then
  if redis.call('HGET', frames, epoch) == blob then return 'duplicate' end
  return 'conflict'
end
local span = tonumber(ARGV[9])
local newest = redis.call('ZREVRANGE', times, 0, 0, 'WITHSCORES')
if #newest > 0 and tonumber(epoch) < tonumber(newest[2]) - span then return 'too_old' end
if redis.call('ZCARD', times) >= n then
  local oldest = redis.call('ZRANGE', times, 0, 0, 'WITHSCORES')
  if tonumber(epoch) < tonumber(oldest[2]) then return 'too_old' end
end
redis.call('ZADD', times, epoch, epoch)
redis.call('HSET', frames, epoch, blob)
local excess = redis.call('ZCARD', times) - n
if excess > 0 then
  local dropped = redis.call('ZRANGE', times, 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', times, 0, excess - 1)
  redis.call('HDEL', frames, unpack(dropped))
end
redis.call('SADD', sites, site)
if ARGV[6] == '1' then
  redis.call('XADD', events, 'MAXLEN', '~', ARGV[7], '*',
             'site', site, 'valid_time', ARGV[5], 'norm_version', ARGV[8])
end
return 'inserted'
"""

_READ_LAST_LUA = """
local ids = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #ids == 0 then return {} end
local blobs = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i = 1, #ids do out[2 * i - 1] = ids[i]; out[2 * i] = blobs[i] end
return out
"""


class InsertOutcome(StrEnum):
    INSERTED = "inserted"
    DUPLICATE = "duplicate"  # same time, same content: nothing changed
    CONFLICT = "conflict"  # same time, other content: the window keeps the first
    TOO_OLD = "too_old"  # older than a full window or the span: archived only


class WindowError(LookupError):
    """The window cannot give what was asked; the message says why."""


class WindowGapError(WindowError):
    """The last frames are not consecutive; ``missing`` lists the absent valid times."""

    def __init__(self, site_id: str, missing: list[datetime], cadence_min: float) -> None:
        shown = ", ".join(t.strftime("%Y-%m-%dT%H:%MZ") for t in missing[:5])
        more = f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
        super().__init__(
            f"site {site_id}: gap in the last frames, missing {shown}{more} "
            f"at a {cadence_min:g}-minute cadence"
        )
        self.missing = missing
        self.cadence_min = cadence_min


@dataclass(frozen=True)
class WindowStatus:
    """What a site's window holds; times UTC."""

    site_id: str
    count: int
    oldest: datetime | None
    newest: datetime | None
    cadence_min: float | None
    missing: list[datetime]  # the newest missing slots, at most the window's size
    missing_count: int = 0  # all missing slots between oldest and newest


def _epoch(t: datetime) -> int:
    return int(t.timestamp())


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(int(epoch), tz=UTC)


def infer_cadence_min(epochs: list[int]) -> float | None:
    """Most common positive spacing (minutes) of sorted epoch seconds; None if under 2 times."""
    steps = [b - a for a, b in pairwise(epochs) if b > a]
    if not steps:
        return None
    # the smallest spacing that is common: a gap is a multiple of the cadence, never smaller
    counts = Counter(steps)
    best = max(counts.values())
    return min(s for s, c in counts.items() if c == best) / 60.0


def missing_slots(
    epochs: list[int], cadence_min: float, limit: int | None = None
) -> list[datetime]:
    """Cadence slots between the first and last of sorted ``epochs`` that hold no frame.

    Slots are counted back from the newest frame; with ``limit`` only the newest ``limit``
    missing slots are listed (oldest first), so the answer is bounded whatever the span.
    """
    step = round(cadence_min * 60)
    if not epochs or step <= 0:
        return []
    present = set(epochs)
    found: list[datetime] = []
    for t in range(epochs[-1] - step, epochs[0] - 1, -step):
        if limit is not None and len(found) >= limit:
            break
        if t not in present:
            found.append(_utc(t))
    return found[::-1]


def count_missing_slots(epochs: list[int], cadence_min: float) -> int:
    """How many cadence slots, counted back from the newest of sorted ``epochs`` to the
    oldest, hold no frame; arithmetic, without listing them."""
    step = round(cadence_min * 60)
    if not epochs or step <= 0:
        return 0
    slots = (epochs[-1] - epochs[0]) // step + 1
    on_grid = sum(1 for e in set(epochs) if (epochs[-1] - e) % step == 0)
    return slots - on_grid


class WindowStore:
    """Reads and writes the per-site windows; the connection is passed in (rq style)."""

    def __init__(
        self,
        connection: redis.Redis,
        window_frames: int,
        events_maxlen: int,
        max_span_min: float = 7 * 1440.0,
    ) -> None:
        """``max_span_min``: a frame older than the site's newest by more than this many
        minutes is archived only."""
        self._redis = connection
        self._n = window_frames
        self._max_span_s = round(max_span_min * 60)
        self._events_maxlen = events_maxlen
        self._insert = connection.register_script(_INSERT_LUA)
        self._read_last = connection.register_script(_READ_LAST_LUA)

    @classmethod
    def from_settings(cls, connection: redis.Redis, settings: CoreSettings) -> WindowStore:
        """The store as ``settings`` size it (frames, span, events stream length)."""
        return cls(
            connection,
            settings.window_frames,
            settings.events_stream_maxlen,
            settings.window_max_span_min,
        )

    @property
    def size(self) -> int:
        return self._n

    def insert(self, frame: Frame, emit_event: bool = True) -> InsertOutcome:
        """Insert one frame atomically; see the module docstring for the rules."""
        site = frame.site_id
        result = self._insert(
            keys=[
                keys.window_times(site),
                keys.window_frames(site),
                keys.EVENTS_STREAM,
                keys.SITES,
            ],
            args=[
                _epoch(frame.valid_time),
                encode_frame(frame),
                self._n,
                site,
                frame.valid_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "1" if emit_event else "0",
                self._events_maxlen,
                frame.norm_version,
                self._max_span_s,
            ],
        )
        return InsertOutcome(result.decode() if isinstance(result, bytes) else result)

    def sites(self) -> list[str]:
        return sorted(s.decode() for s in self._redis.smembers(keys.SITES))

    def epochs(self, site_id: str) -> list[int]:
        return [int(float(m)) for m in self._redis.zrange(keys.window_times(site_id), 0, -1)]

    def cadence_min(self, site_id: str, configured: float | None = None) -> float | None:
        """The configured cadence, else the one inferred from the window's spacing."""
        return configured if configured is not None else infer_cadence_min(self.epochs(site_id))

    def status(self, site_id: str, configured_cadence_min: float | None = None) -> WindowStatus:
        epochs = self.epochs(site_id)
        cadence = self.cadence_min(site_id, configured_cadence_min)
        return WindowStatus(
            site_id=site_id,
            count=len(epochs),
            oldest=_utc(epochs[0]) if epochs else None,
            newest=_utc(epochs[-1]) if epochs else None,
            cadence_min=cadence,
            missing=missing_slots(epochs, cadence, limit=self._n) if cadence else [],
            missing_count=count_missing_slots(epochs, cadence) if cadence else 0,
        )

    def frames(self, site_id: str, count: int | None = None) -> list[Frame]:
        """The newest ``count`` frames (all when None), oldest first; gaps allowed."""
        flat = self._read_last(
            keys=[keys.window_times(site_id), keys.window_frames(site_id)],
            args=[count or self._n],
        )
        frames = [decode_frame(flat[i + 1]) for i in range(0, len(flat), 2) if flat[i + 1]]
        return frames[::-1]

    def last_consecutive(
        self, site_id: str, count: int, configured_cadence_min: float | None = None
    ) -> list[Frame]:
        """The newest ``count`` frames at an unbroken cadence, oldest first.

        Raises `WindowError` when fewer frames exist and `WindowGapError` naming the missing
        times when the newest ``count`` frames are not consecutive.
        """
        frames = self.frames(site_id, count)
        if len(frames) < count:
            raise WindowError(f"site {site_id}: {len(frames)} frames in the window, need {count}")
        cadence = self.cadence_min(site_id, configured_cadence_min)
        if cadence is None:
            raise WindowError(f"site {site_id}: cadence unknown")
        step = timedelta(minutes=cadence)
        expected = [frames[-1].valid_time - step * (count - 1 - i) for i in range(count)]
        have = {f.valid_time for f in frames}
        missing = [t for t in expected if t not in have]
        if missing:
            raise WindowGapError(site_id, missing, cadence)
        return frames

    def holds(self, site_id: str, valid_time: datetime) -> bool:
        """Whether the window holds a frame valid at ``valid_time``."""
        return bool(self._redis.hexists(keys.window_frames(site_id), str(_epoch(valid_time))))

    def frame_at(self, site_id: str, valid_time: datetime) -> Frame | None:
        """The frame valid at ``valid_time``, or None when the window does not hold it."""
        blob = self._redis.hget(keys.window_frames(site_id), str(_epoch(valid_time)))
        return decode_frame(blob) if blob else None

    def consecutive_ending(
        self,
        site_id: str,
        end_time: datetime,
        count: int,
        configured_cadence_min: float | None = None,
    ) -> list[Frame]:
        """``count`` frames at an unbroken cadence ending at ``end_time``, oldest first.

        Raises `WindowError` when the cadence is unknown or ``end_time`` is not held, and
        `WindowGapError` naming the missing times when the frames before it are not all there.
        """
        cadence = self.cadence_min(site_id, configured_cadence_min)
        if cadence is None:
            raise WindowError(f"site {site_id}: cadence unknown (fewer than 2 frames)")
        step = timedelta(minutes=cadence)
        wanted = [end_time - step * (count - 1 - i) for i in range(count)]
        blobs = self._redis.hmget(keys.window_frames(site_id), [str(_epoch(t)) for t in wanted])
        if blobs[-1] is None:
            raise WindowError(
                f"site {site_id}: no frame at {end_time:%Y-%m-%dT%H:%MZ} in the window"
            )
        missing = [t for t, blob in zip(wanted, blobs, strict=True) if blob is None]
        if missing:
            raise WindowGapError(site_id, missing, cadence)
        return [decode_frame(blob) for blob in blobs]

    def clear(self, site_id: str) -> None:
        self._redis.delete(
            keys.window_times(site_id), keys.window_frames(site_id), keys.native_frames(site_id)
        )
