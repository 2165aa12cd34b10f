"""The publisher's state in Redis: delivered markers, in-flight locks, counts, dead letters,
cron cycles and missed cycles. A thin adapter: the connection is passed in.

Exactly once per (subscriber, site, issue time): a delivery is attempted only by the holder of
its lock (SET NX with a token and a TTL, extended before each attempt, released by token) and
only while its "delivered" marker is absent; the marker is set, in one transaction with the
count and the removal of any dead letter, right after the receiver accepted it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import redis

from core import keys
from core.worker import live_states
from service.forecast import parse_time
from service.publish.message import DeliveryJob

OUTCOMES = ("delivered", "retried", "dead_lettered", "expired")
MISSED_LOG_MAX = 200
HEARTBEAT_TTL_S = 30

_EXTEND_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: letters hash, index zset, counts hash; ARGV: id, JSON, dead-at epoch, max, count field
_DEAD_LETTER_LUA = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[5], 1)
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if excess > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  redis.call('HDEL', KEYS[1], unpack(oldest))
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
return 1
"""


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class DeadLetter:
    """A delivery given up after its last attempt: enough to rebuild it, never the body."""

    delivery_id: str
    subscriber: str
    site_id: str
    method: str
    issue_time: datetime
    reason: str
    attempts: int  # all attempts so far, replays included
    dead_at: datetime

    @classmethod
    def of(cls, job: DeliveryJob, reason: str, attempts: int, dead_at: datetime) -> DeadLetter:
        return cls(
            job.delivery_id,
            job.subscriber,
            job.site_id,
            job.method,
            job.issue_time,
            reason,
            attempts,
            dead_at,
        )

    @property
    def job(self) -> DeliveryJob:
        return DeliveryJob(self.subscriber, self.site_id, self.method, self.issue_time)

    def to_json(self) -> str:
        fields = asdict(self)
        fields.update(issue_time=_iso(self.issue_time), dead_at=_iso(self.dead_at))
        return json.dumps(fields, sort_keys=True)

    @classmethod
    def from_json(cls, text: bytes | str) -> DeadLetter:
        d = json.loads(text)
        return cls(
            delivery_id=str(d["delivery_id"]),
            subscriber=str(d["subscriber"]),
            site_id=str(d["site_id"]),
            method=str(d["method"]),
            issue_time=parse_time(d["issue_time"]),
            reason=str(d["reason"]),
            attempts=int(d["attempts"]),
            dead_at=parse_time(d["dead_at"]),
        )


@dataclass(frozen=True)
class MissedCycle:
    """A cron cycle in which a site had no forecast newer than at the previous cycle."""

    site_id: str
    cycle_time: datetime
    reason: str  # the inference refusal (warming_up, gap, behind ...) or no_new_frame
    message: str
    latest_issue_time: datetime | None


class PublishState:
    """Reads and writes the publishing keys of `core.keys`.

    ``delivered_ttl_s``: how long a delivered marker is kept; it must outlive the forecast
    (then no re-delivery can happen: the forecast is gone). ``dead_letters_max``: the oldest
    dead letters beyond this are dropped.
    """

    def __init__(
        self, connection: redis.Redis, delivered_ttl_s: int, dead_letters_max: int = 10_000
    ) -> None:
        self._redis = connection
        self._delivered_ttl_s = int(delivered_ttl_s)
        self._dead_letters_max = int(dead_letters_max)
        self._extend = connection.register_script(_EXTEND_LUA)
        self._release = connection.register_script(_RELEASE_LUA)
        self._dead_letter = connection.register_script(_DEAD_LETTER_LUA)

    # -- exactly once ----------------------------------------------------------------------
    def is_delivered(self, job: DeliveryJob) -> bool:
        key = keys.publish_delivered(job.site_id, job.subscriber, job.issue_epoch)
        return bool(self._redis.exists(key))

    def acquire(self, job: DeliveryJob, ttl_s: int) -> str | None:
        """Take the job's in-flight lock; its token, or None while another publisher holds it."""
        token = uuid.uuid4().hex
        key = keys.publish_lock(job.site_id, job.subscriber, job.issue_epoch)
        return token if self._redis.set(key, token, nx=True, ex=ttl_s) else None

    def extend(self, job: DeliveryJob, token: str, ttl_s: int) -> bool:
        """Renew the lock for ``ttl_s``; False if it is no longer ours (expired, taken)."""
        key = keys.publish_lock(job.site_id, job.subscriber, job.issue_epoch)
        return bool(self._extend(keys=[key], args=[token, ttl_s]))

    def release(self, job: DeliveryJob, token: str) -> None:
        key = keys.publish_lock(job.site_id, job.subscriber, job.issue_epoch)
        self._release(keys=[key], args=[token])

    def mark_delivered(self, job: DeliveryJob) -> None:
        """The marker, the count and the end of any dead letter, in one transaction."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(
            keys.publish_delivered(job.site_id, job.subscriber, job.issue_epoch),
            _iso(datetime.now(UTC)),
            ex=self._delivered_ttl_s,
        )
        pipe.hincrby(keys.PUBLISH_COUNTS, f"delivered:{job.subscriber}", 1)
        pipe.hdel(keys.PUBLISH_DEAD_LETTERS, job.delivery_id)
        pipe.zrem(keys.PUBLISH_DEAD_LETTER_INDEX, job.delivery_id)
        pipe.execute()

    def count(self, outcome: str, subscriber: str, n: int = 1) -> None:
        self._redis.hincrby(keys.PUBLISH_COUNTS, f"{outcome}:{subscriber}", n)

    def counts(self) -> dict[str, dict[str, int]]:
        """Subscriber -> outcome -> count."""
        out: dict[str, dict[str, int]] = {}
        for field, value in self._redis.hgetall(keys.PUBLISH_COUNTS).items():
            outcome, _, subscriber = field.decode().partition(":")
            out.setdefault(subscriber, {})[outcome] = int(value)
        return out

    # -- dead letters ----------------------------------------------------------------------
    def add_dead_letter(self, letter: DeadLetter) -> None:
        self._dead_letter(
            keys=[keys.PUBLISH_DEAD_LETTERS, keys.PUBLISH_DEAD_LETTER_INDEX, keys.PUBLISH_COUNTS],
            args=[
                letter.delivery_id,
                letter.to_json(),
                int(letter.dead_at.timestamp()),
                self._dead_letters_max,
                f"dead_lettered:{letter.subscriber}",
            ],
        )

    def dead_letter(self, delivery_id: str) -> DeadLetter | None:
        blob = self._redis.hget(keys.PUBLISH_DEAD_LETTERS, delivery_id)
        return DeadLetter.from_json(blob) if blob else None

    def remove_dead_letter(self, delivery_id: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(keys.PUBLISH_DEAD_LETTERS, delivery_id)
        pipe.zrem(keys.PUBLISH_DEAD_LETTER_INDEX, delivery_id)
        pipe.execute()

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Newest first; at most ``limit``."""
        ids = self._redis.zrevrange(
            keys.PUBLISH_DEAD_LETTER_INDEX, 0, -1 if limit is None else limit - 1
        )
        if not ids:
            return []
        blobs = self._redis.hmget(keys.PUBLISH_DEAD_LETTERS, ids)
        return [DeadLetter.from_json(b) for b in blobs if b]

    def dead_letter_count(self) -> int:
        return int(self._redis.zcard(keys.PUBLISH_DEAD_LETTER_INDEX))

    # -- cron cycles -----------------------------------------------------------------------
    def claim_cycle(self, site_id: str, cycle_time: datetime, ttl_s: int) -> bool:
        """True for the one replica that checks ``site_id`` in the cycle at ``cycle_time``."""
        key = keys.publish_cycle(site_id, int(cycle_time.timestamp()))
        return bool(self._redis.set(key, "1", nx=True, ex=ttl_s))

    def last_cycle_issue(self, site_id: str) -> datetime | None:
        """The newest issue time seen at the site's previous cycle."""
        value = self._redis.hget(keys.publish_status(site_id), "cycle_issue_time")
        return parse_time(value.decode()) if value else None

    def record_cycle(
        self, site_id: str, cycle_time: datetime, latest_issue_time: datetime | None
    ) -> None:
        fields = {"cycle_time": _iso(cycle_time)}
        if latest_issue_time is not None:
            fields["cycle_issue_time"] = _iso(latest_issue_time)
        self._redis.hset(keys.publish_status(site_id), mapping=fields)

    def record_missed(self, missed: MissedCycle) -> None:
        entry = {
            "site_id": missed.site_id,
            "cycle_time": _iso(missed.cycle_time),
            "reason": missed.reason,
            "message": missed.message,
            "latest_issue_time": (
                _iso(missed.latest_issue_time) if missed.latest_issue_time else None
            ),
        }
        pipe = self._redis.pipeline(transaction=True)
        pipe.hincrby(keys.PUBLISH_MISSED, missed.site_id, 1)
        pipe.hset(
            keys.publish_status(missed.site_id),
            mapping={"missed_" + k: v or "" for k, v in entry.items() if k != "site_id"},
        )
        pipe.lpush(keys.PUBLISH_MISSED_LOG, json.dumps(entry))
        pipe.ltrim(keys.PUBLISH_MISSED_LOG, 0, MISSED_LOG_MAX - 1)
        pipe.execute()

    def missed_counts(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self._redis.hgetall(keys.PUBLISH_MISSED).items()}

    def missed_log(self, limit: int) -> list[MissedCycle]:
        """The most recent missed cycles, newest first."""
        out = []
        for blob in self._redis.lrange(keys.PUBLISH_MISSED_LOG, 0, limit - 1):
            d = json.loads(blob)
            latest = d.get("latest_issue_time")
            out.append(
                MissedCycle(
                    site_id=d["site_id"],
                    cycle_time=parse_time(d["cycle_time"]),
                    reason=d["reason"],
                    message=d["message"],
                    latest_issue_time=parse_time(latest) if latest else None,
                )
            )
        return out

    def site_status(self, site_id: str) -> dict[str, str]:
        raw = self._redis.hgetall(keys.publish_status(site_id))
        return {k.decode(): v.decode() for k, v in raw.items()}

    # -- liveness --------------------------------------------------------------------------
    def heartbeat(self, consumer: str, mode: str) -> None:
        state = {"mode": mode, "at": time.time()}
        self._redis.set(f"{keys.PUBLISH_HEALTH}:{consumer}", json.dumps(state), ex=HEARTBEAT_TTL_S)

    def live_publishers(self) -> list[dict[str, object]]:
        return live_states(self._redis, keys.PUBLISH_HEALTH)
