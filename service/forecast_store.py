"""Stored nowcasts in Redis: one key per (site, method, issue time) with a TTL, and an index.

Each newly stored issue time is announced on the stream ``nowcast:events:forecasts`` (site,
issue_time, methods) for consumers such as the publisher.

The forecasts of one issue time (every method) are stored by one Lua script together with a
"made" marker, so that an issue time is forecast exactly once even when two workers, or a
worker and the one that claimed its pending entry, both computed it: the second store is a
no-op and is reported as such.
"""

from __future__ import annotations

from datetime import UTC, datetime

import redis

from core import keys
from service.forecast import Forecast, decode_forecast, encode_forecast

INDEX_MAX_ENTRIES = 2000
FORECAST_EVENTS_MAXLEN = 100_000

# KEYS: made marker, counts hash, forecast events stream, then per method: forecast, index
# ARGV: ttl_s, issue_epoch, index_max, site, issue ISO time, methods (comma-separated),
#       stream maxlen, then per method: blob, counter field
_STORE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ttl, epoch, index_max = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
redis.call('SET', KEYS[1], '1', 'EX', ttl)
local n = (#KEYS - 3) / 2
for i = 1, n do
  local key, index = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  redis.call('SET', key, ARGV[6 + 2 * i], 'EX', ttl)
  redis.call('ZADD', index, epoch, epoch)
  local excess = redis.call('ZCARD', index) - index_max
  if excess > 0 then redis.call('ZREMRANGEBYRANK', index, 0, excess - 1) end
  redis.call('HINCRBY', KEYS[2], ARGV[7 + 2 * i], 1)
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*',
           'site', ARGV[4], 'issue_time', ARGV[5], 'methods', ARGV[6])
return 1
"""

# KEYS: the index; ARGV: the forecasts' key prefix (the index key without "index").
# The newest issue epoch whose forecast is still kept, pruning expired ones; false if none.
_LATEST_LUA = """
for _, member in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, 20)) do
  if redis.call('EXISTS', ARGV[1] .. member) == 1 then return member end
  redis.call('ZREM', KEYS[1], member)
end
return false
"""


def _epoch(t: datetime) -> int:
    return int(t.timestamp())


class ForecastStore:
    """Reads and writes forecasts; the connection is passed in."""

    def __init__(self, connection: redis.Redis, ttl_s: int) -> None:
        self._redis = connection
        self._ttl_s = int(ttl_s)
        self._store = connection.register_script(_STORE_LUA)
        self._latest = connection.register_script(_LATEST_LUA)

    def store_issue(self, forecasts: list[Forecast]) -> bool:
        """Store the forecasts of one (site, issue time), all methods at once.

        Returns False (and stores nothing) when that issue time was stored already.
        """
        if not forecasts:
            raise ValueError("no forecasts to store")
        first = forecasts[0]
        if any((f.site_id, f.issue_time) != (first.site_id, first.issue_time) for f in forecasts):
            raise ValueError("store_issue takes the forecasts of one site and issue time")
        epoch = _epoch(first.issue_time)
        script_keys = [
            keys.forecast_made(first.site_id, epoch),
            keys.INFER_COUNTS,
            keys.FORECAST_EVENTS,
        ]
        args: list[str | int | bytes] = [
            self._ttl_s,
            epoch,
            INDEX_MAX_ENTRIES,
            first.site_id,
            first.issue_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            ",".join(f.method for f in forecasts),
            FORECAST_EVENTS_MAXLEN,
        ]
        for f in forecasts:
            script_keys += [
                keys.forecast(f.site_id, f.method, epoch),
                keys.forecast_index(f.site_id, f.method),
            ]
            args += [encode_forecast(f), f"issued:{f.method}"]
        return bool(self._store(keys=script_keys, args=args))

    def was_made(self, site_id: str, issue_time: datetime) -> bool:
        return bool(self._redis.exists(keys.forecast_made(site_id, _epoch(issue_time))))

    def get(self, site_id: str, method: str, issue_time: datetime) -> Forecast | None:
        blob = self._redis.get(keys.forecast(site_id, method, _epoch(issue_time)))
        return decode_forecast(blob) if blob else None

    def issue_times(self, site_id: str, method: str) -> list[datetime]:
        """Issue times of the forecasts still kept, oldest first (expired ones pruned)."""
        epochs = [
            int(float(e)) for e in self._redis.zrange(keys.forecast_index(site_id, method), 0, -1)
        ]
        return self._alive(site_id, method, epochs)

    def latest_issue_time(self, site_id: str, method: str) -> datetime | None:
        """Issue time of the newest kept forecast of ``method`` for the site, or None.

        One round trip (the API asks this on every request for a latest forecast).
        """
        index = keys.forecast_index(site_id, method)
        prefix = index.removesuffix("index")
        member = self._latest(keys=[index], args=[prefix])
        return datetime.fromtimestamp(int(member), tz=UTC) if member else None

    def is_kept(self, site_id: str, method: str, issue_time: datetime) -> bool:
        return bool(self._redis.exists(keys.forecast(site_id, method, _epoch(issue_time))))

    def latest(self, site_id: str, method: str) -> Forecast | None:
        """The newest kept forecast of ``method`` for the site, or None."""
        index = keys.forecast_index(site_id, method)
        for member in self._redis.zrevrange(index, 0, 20):
            epoch = int(float(member))
            blob = self._redis.get(keys.forecast(site_id, method, epoch))
            if blob:
                return decode_forecast(blob)
            self._redis.zrem(index, member)
        return None

    def issued_between(
        self, site_id: str, method: str, start: datetime, end: datetime
    ) -> list[Forecast]:
        """Kept forecasts with start <= issue time <= end, oldest first."""
        members = self._redis.zrangebyscore(
            keys.forecast_index(site_id, method), _epoch(start), _epoch(end)
        )
        if not members:
            return []
        epochs = [int(float(m)) for m in members]
        blobs = self._redis.mget([keys.forecast(site_id, method, e) for e in epochs])
        return [decode_forecast(b) for b in blobs if b]

    def _alive(self, site_id: str, method: str, epochs: list[int]) -> list[datetime]:
        if not epochs:
            return []
        blobs_exist = self._redis.pipeline(transaction=False)
        for e in epochs:
            blobs_exist.exists(keys.forecast(site_id, method, e))
        alive = blobs_exist.execute()
        dead = [e for e, ok in zip(epochs, alive, strict=True) if not ok]
        if dead:
            self._redis.zrem(keys.forecast_index(site_id, method), *dead)
        return [
            datetime.fromtimestamp(e, tz=UTC) for e, ok in zip(epochs, alive, strict=True) if ok
        ]
