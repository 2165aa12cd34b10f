"""Redis key names, in one place. Every key starts with ``nowcast:``."""

from __future__ import annotations

PREFIX = "nowcast"
SITES = f"{PREFIX}:sites"  # set of site ids with a window
EVENTS_STREAM = f"{PREFIX}:events:frames"  # new frame events for the inference worker
INCOMING_STREAM = f"{PREFIX}:ingest:incoming"  # frames pushed by other processes
INCOMING_GROUP = "ingest"
COUNTS = f"{PREFIX}:ingest:counts"  # hash: accepted, quarantined:<reason>, ...
CELLS_BEYOND_BOUNDS = f"{PREFIX}:ingest:cells-beyond-bounds"  # integer: cells read as nodata
SEEN_FILES = f"{PREFIX}:ingest:seen-files"  # set of "path|size|mtime_ns" already processed
HEALTH = f"{PREFIX}:health:ingest"


def window_times(site_id: str) -> str:
    """Sorted set: member and score are the valid time in epoch seconds."""
    return f"{PREFIX}:window:{{{site_id}}}:times"


def window_frames(site_id: str) -> str:
    """Hash: epoch seconds -> encoded frame."""
    return f"{PREFIX}:window:{{{site_id}}}:frames"


def native_frames(site_id: str) -> str:
    """Hash: epoch seconds -> the radar's own frame, packed (`ingest.native`)."""
    return f"{PREFIX}:window:{{{site_id}}}:native"


def site_meta(site_id: str) -> str:
    """Hash: grid, cadence_min, norm_version, mask_version, last_ingest ..."""
    return f"{PREFIX}:site:{{{site_id}}}:meta"


def site_counts(site_id: str) -> str:
    return f"{PREFIX}:site:{{{site_id}}}:counts"


def noise_mask(site_id: str) -> str:
    """Hash: version, shape, bits (numpy packbits of the boolean mask)."""
    return f"{PREFIX}:mask:{{{site_id}}}"


# -- inference and live verification -------------------------------------------------------
INFER_GROUP = "infer"  # consumer group of the inference workers on EVENTS_STREAM
INFER_COUNTS = f"{PREFIX}:infer:counts"  # hash: issued:<method>, refused:<reason>, verified
INFER_HEALTH = f"{PREFIX}:health:infer"  # prefix of per-worker heartbeat keys (JSON)
FORECAST_EVENTS = f"{PREFIX}:events:forecasts"  # stream: (site, issue_time, methods) once stored


def forecast(site_id: str, method: str, issue_epoch: int) -> str:
    """String: an encoded `service.forecast.Forecast`, with a TTL."""
    return f"{PREFIX}:forecast:{{{site_id}}}:{method}:{issue_epoch}"


def forecast_index(site_id: str, method: str) -> str:
    """Sorted set: issue epochs of the site's stored forecasts of ``method``."""
    return f"{PREFIX}:forecast:{{{site_id}}}:{method}:index"


def forecast_made(site_id: str, issue_epoch: int) -> str:
    """String: set once when the forecasts of one issue time are stored (exactly once)."""
    return f"{PREFIX}:forecast:{{{site_id}}}:made:{issue_epoch}"


def infer_status(site_id: str) -> str:
    """Hash: last issue time, last refusal and its reason."""
    return f"{PREFIX}:infer:{{{site_id}}}:status"


def verification_bucket(site_id: str, method: str, hour_epoch: int) -> str:
    """Hash of pooled counts and sums of the forecasts verified in one hour (valid time)."""
    return f"{PREFIX}:verif:{{{site_id}}}:{method}:{hour_epoch}"


def verification_hours(site_id: str, method: str) -> str:
    """Sorted set: hour epochs holding a verification bucket."""
    return f"{PREFIX}:verif:{{{site_id}}}:{method}:hours"


def verification_done(site_id: str, hour_epoch: int) -> str:
    """Set: "method|issue_epoch|lead" counted in that hour (makes counting idempotent)."""
    return f"{PREFIX}:verif:{{{site_id}}}:done:{hour_epoch}"


# -- publishing (nowcast publish) ------------------------------------------------------------
PUBLISH_GROUP = "publish"  # consumer group of the publishers on FORECAST_EVENTS
PUBLISH_COUNTS = f"{PREFIX}:publish:counts"  # hash: "<outcome>:<subscriber>" -> count
PUBLISH_DEAD_LETTERS = f"{PREFIX}:publish:dead-letters"  # hash: delivery id -> JSON letter
PUBLISH_DEAD_LETTER_INDEX = f"{PREFIX}:publish:dead-letters:index"  # zset: id by dead-at epoch
PUBLISH_MISSED = f"{PREFIX}:publish:missed"  # hash: site -> missed cron cycles
PUBLISH_MISSED_LOG = f"{PREFIX}:publish:missed:log"  # list of JSON missed cycles, newest first
PUBLISH_HEALTH = f"{PREFIX}:health:publish"  # prefix of per-publisher heartbeat keys (JSON)


def publish_delivered(site_id: str, subscriber: str, issue_epoch: int) -> str:
    """String: set once the nowcast of that issue time reached the subscriber (with a TTL)."""
    return f"{PREFIX}:publish:{{{site_id}}}:delivered:{subscriber}:{issue_epoch}"


def publish_lock(site_id: str, subscriber: str, issue_epoch: int) -> str:
    """String: the token of the publisher delivering it now (short TTL, extended per try)."""
    return f"{PREFIX}:publish:{{{site_id}}}:lock:{subscriber}:{issue_epoch}"


def publish_cycle(site_id: str, cycle_epoch: int) -> str:
    """String: taken (SET NX) by the one publisher replica that checks the site in a cycle."""
    return f"{PREFIX}:publish:{{{site_id}}}:cycle:{cycle_epoch}"


def publish_status(site_id: str) -> str:
    """Hash: last cycle, issue time seen then, last missed cycle with its reason."""
    return f"{PREFIX}:publish:{{{site_id}}}:status"
