"""Live verification counts in Redis: hourly buckets per (site, method), summed on demand.

Each verified (method, issue time, lead) adds the contingency counts and squared-error sums of
one forecast frame against its observation to the bucket of the observation's hour. A Lua
script adds them only if that (method, issue time, lead) was not counted before, so a
re-delivered frame or a re-run worker never counts twice. Reading sums the buckets of a time
range into a `model.verification.scores.ScoreAccumulator`: the same scoring code as ``nowcast
evaluate``.

A probabilistic forecast's probabilities of exceedance are counted the same way, once per
(method, issue time, lead), into buckets of their own ("<method>#probability"): the Brier,
reliability and ROC counts of `model.verification.probabilistic.ProbabilityAccumulator`
(``summed_probability``). Its members are not stored (20 times a forecast's size), so the CRPS
and the rank histogram are offline scores (``nowcast evaluate``) only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import redis

from core import keys
from model.verification.probabilistic import ProbabilityAccumulator
from model.verification.scores import THRESHOLDS_MMH, ScoreAccumulator, threshold_key

_COUNT_FIELDS = ("hits", "misses", "false_alarms", "correct_negatives")
_SUM_FIELDS = ("sum_squared_error_mmh2", "sum_pt", "sum_pp", "sum_tt", "n_cells")

PROBABILITY = "#probability"
"""Suffix of a method's probabilistic buckets and done members."""

# KEYS: done set, bucket hash, hours index, worker counts; ARGV: member, hour epoch, ttl_s,
# tally field, field, value, ... The tally ("verified") moves with the counts: a reply lost
# after the script ran (Redis killed) cannot leave it short.
_ADD_LUA = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[3])
for i = 5, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[2])
redis.call('HINCRBY', KEYS[4], ARGV[4], 1)
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
        fields = lead_fields(lead, single)
        return self._count(site_id, method, issue_time, lead, valid_time, "verified", fields)

    def summed(
        self,
        site_ids: list[str],
        method: str,
        n_leads: int,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> ScoreAccumulator:
        """Counts of ``method`` over the sites, for observations valid in [since, until]."""
        totals: dict[str, float] = {}
        for bucket in self._buckets(site_ids, method, since, until):
            for name, value in bucket.items():
                field = name.decode()
                totals[field] = totals.get(field, 0.0) + float(value)
        return accumulator_from_fields(totals, n_leads)

    def add_probability(
        self,
        site_id: str,
        method: str,
        issue_time: datetime,
        lead: int,
        valid_time: datetime,
        single: ProbabilityAccumulator,
    ) -> bool:
        """Count one lead's probabilities (``single`` holds only that lead's counts); False
        when counted already."""
        name, fields = method + PROBABILITY, probability_fields(single)
        tally = "verified_probability"
        return self._count(site_id, name, issue_time, lead, valid_time, tally, fields)

    def summed_probability(
        self,
        site_ids: list[str],
        method: str,
        n_leads: int,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> ProbabilityAccumulator:
        """Probabilistic counts of ``method`` over the sites, observations in [since, until]."""
        acc = ProbabilityAccumulator(n_leads, THRESHOLDS_MMH)
        for bucket in self._buckets(site_ids, method + PROBABILITY, since, until):
            add_probability_fields(acc, bucket)
        return acc

    def _count(
        self,
        site_id: str,
        name: str,
        issue_time: datetime,
        lead: int,
        valid_time: datetime,
        tally: str,
        fields: list[str | float],
    ) -> bool:
        """Add ``fields`` to the bucket of ``name`` (a method, or its probabilistic buckets)
        for the observation's hour, once per (name, issue time, lead); ``tally`` counts it."""
        hour = hour_epoch(valid_time)
        added = self._add(
            keys=[
                keys.verification_done(site_id, hour),
                keys.verification_bucket(site_id, name, hour),
                keys.verification_hours(site_id, name),
                keys.INFER_COUNTS,
            ],
            args=[
                f"{name}|{int(issue_time.timestamp())}|{lead}",
                hour,
                self._ttl_s,
                tally,
                *fields,
            ],
        )
        return bool(added)

    def _buckets(
        self, site_ids: list[str], name: str, since: datetime | None, until: datetime | None
    ) -> Iterator[dict[bytes, bytes]]:
        """The hourly buckets of ``name`` over the sites, observations in [since, until]."""
        low = hour_epoch(since) if since else "-inf"
        high = int(until.timestamp()) if until else "+inf"
        for site_id in site_ids:
            hours = self._redis.zrangebyscore(keys.verification_hours(site_id, name), low, high)
            pipe = self._redis.pipeline(transaction=False)
            for hour in hours:
                pipe.hgetall(keys.verification_bucket(site_id, name, int(float(hour))))
            yield from pipe.execute()

    def hours(self, site_id: str, method: str) -> list[datetime]:
        """Hours (UTC) with counts for the site and method, oldest first."""
        members = self._redis.zrange(keys.verification_hours(site_id, method), 0, -1)
        return [datetime.fromtimestamp(int(float(m)), tz=UTC) for m in members]


def single_lead_accumulator(forecast_mmh: np.ndarray, observed_mmh: np.ndarray) -> ScoreAccumulator:
    """Counts of one (H, W) forecast frame against its (H, W) observation, in mm/h."""
    acc = ScoreAccumulator(1)
    acc.add(forecast_mmh[np.newaxis], observed_mmh[np.newaxis])
    return acc


def probability_fields(acc: ProbabilityAccumulator) -> list[str | float]:
    """Flat (field, value) pairs of the non-zero probabilistic counts: ``name:lead:index``
    (index the threshold, then the bin or probability threshold)."""
    pairs: list[str | float] = []
    for name, values in acc.arrays.items():
        if values.ndim < 2:  # per-lead ensemble scores: not stored live
            continue
        for index in zip(*np.nonzero(values), strict=True):
            lead, *rest = (int(i) for i in index)
            pairs += [f"{name}:{lead + 1}:{':'.join(map(str, rest))}", float(values[index])]
    return pairs


def add_probability_fields(acc: ProbabilityAccumulator, bucket: dict[bytes, bytes]) -> None:
    """Add one bucket's fields (`probability_fields`) to ``acc``; unknown fields are ignored."""
    for raw, value in bucket.items():
        name, lead, *rest = raw.decode().split(":")
        values = acc.arrays.get(name)
        if values is None or values.ndim != 2 + len(rest) - 1 or not 1 <= int(lead) <= acc.n_leads:
            continue
        index = (int(lead) - 1, *(int(i) for i in rest))
        if all(0 <= i < n for i, n in zip(index, values.shape, strict=True)):
            values[index] += round(float(value)) if values.dtype.kind == "i" else float(value)
