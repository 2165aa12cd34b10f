"""Live verification counts in Redis: hourly buckets per (site, method), summed on demand.

Each verified (method, issue time, lead) adds the contingency counts and squared-error sums of
one forecast frame against its observation to the bucket of the observation's hour. A Lua
script adds them only if that (method, issue time, lead) was not counted before, so a
re-delivered frame or a re-run worker never counts twice. Reading sums the buckets of a time
range into a `model.verification.scores.ScoreAccumulator`: the same scoring code as ``nowcast
evaluate``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import redis

from core import keys
from model.verification.scores import THRESHOLDS_MMH, ScoreAccumulator, threshold_key

_COUNT_FIELDS = ("hits", "misses", "false_alarms", "correct_negatives")
_SUM_FIELDS = ("sum_squared_error_mmh2", "sum_pt", "sum_pp", "sum_tt", "n_cells")

# KEYS: done set, bucket hash, hours index, worker counts; ARGV: member, hour epoch, ttl_s,
# field, value, ... The "verified" tally moves with the counts: a reply lost after the script
# ran (Redis killed) cannot leave it short.
_ADD_LUA = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[3])
for i = 4, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[2])
redis.call('HINCRBY', KEYS[4], 'verified', 1)
return 1
"""


def hour_epoch(t: datetime) -> int:
    """Start of the UTC hour holding ``t``, in epoch seconds."""
    epoch = int(t.timestamp())
    return epoch - epoch % 3600


def lead_fields(lead: int, single: ScoreAccumulator) -> list[str | float]:
    """Flat (field, value) pairs of a one-lead accumulator, filed under 1-based ``lead``."""
    if single.n_leads != 1:
        raise ValueError("lead_fields takes a one-lead accumulator")
    pairs: list[str | float] = []
    for name in _COUNT_FIELDS:
        for j, threshold in enumerate(single.thresholds_mmh):
            pairs += [f"{name}:{lead}:{threshold_key(threshold)}", int(getattr(single, name)[0, j])]
    for name in _SUM_FIELDS:
        pairs += [f"{name}:{lead}", float(getattr(single, name)[0])]
    return pairs


def accumulator_from_fields(
    fields: dict[str, float], n_leads: int, thresholds_mmh: tuple[float, ...] = THRESHOLDS_MMH
) -> ScoreAccumulator:
    """Inverse of `lead_fields` over all leads (fields of one or several summed buckets)."""
    acc = ScoreAccumulator(n_leads, thresholds_mmh)
    for lead in range(1, n_leads + 1):
        for name in _COUNT_FIELDS:
            table = getattr(acc, name)
            for j, threshold in enumerate(thresholds_mmh):
                table[lead - 1, j] = round(
                    fields.get(f"{name}:{lead}:{threshold_key(threshold)}", 0)
                )
        for name in _SUM_FIELDS:
            value = fields.get(f"{name}:{lead}", 0.0)
            getattr(acc, name)[lead - 1] = round(value) if name == "n_cells" else value
    return acc


class VerificationStore:
    """Adds and sums verification counts; the connection is passed in."""

    def __init__(self, connection: redis.Redis, ttl_s: int) -> None:
        self._redis = connection
        self._ttl_s = int(ttl_s)
        self._add = connection.register_script(_ADD_LUA)

    def add(
        self,
        site_id: str,
        method: str,
        issue_time: datetime,
        lead: int,
        valid_time: datetime,
        single: ScoreAccumulator,
    ) -> bool:
        """Count one verified forecast frame; False when it was counted already."""
        hour = hour_epoch(valid_time)
        added = self._add(
            keys=[
                keys.verification_done(site_id, hour),
                keys.verification_bucket(site_id, method, hour),
                keys.verification_hours(site_id, method),
                keys.INFER_COUNTS,
            ],
            args=[
                f"{method}|{int(issue_time.timestamp())}|{lead}",
                hour,
                self._ttl_s,
                *lead_fields(lead, single),
            ],
        )
        return bool(added)

    def summed(
        self,
        site_ids: list[str],
        method: str,
        n_leads: int,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> ScoreAccumulator:
        """Counts of ``method`` over the sites, for observations valid in [since, until]."""
        low = hour_epoch(since) if since else "-inf"
        high = int(until.timestamp()) if until else "+inf"
        totals: dict[str, float] = {}
        for site_id in site_ids:
            hours = self._redis.zrangebyscore(keys.verification_hours(site_id, method), low, high)
            pipe = self._redis.pipeline(transaction=False)
            for hour in hours:
                pipe.hgetall(keys.verification_bucket(site_id, method, int(float(hour))))
            for bucket in pipe.execute():
                for name, value in bucket.items():
                    field = name.decode()
                    totals[field] = totals.get(field, 0.0) + float(value)
        return accumulator_from_fields(totals, n_leads)

    def hours(self, site_id: str, method: str) -> list[datetime]:
        """Hours (UTC) with counts for the site and method, oldest first."""
        members = self._redis.zrange(keys.verification_hours(site_id, method), 0, -1)
        return [datetime.fromtimestamp(int(float(m)), tz=UTC) for m in members]


def single_lead_accumulator(forecast_mmh: np.ndarray, observed_mmh: np.ndarray) -> ScoreAccumulator:
    """Counts of one (H, W) forecast frame against its (H, W) observation, in mm/h."""
    acc = ScoreAccumulator(1)
    acc.add(forecast_mmh[np.newaxis], observed_mmh[np.newaxis])
    return acc
