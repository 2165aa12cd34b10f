"""Redis key names, in one place. Every key starts with ``nowcast:``."""

from __future__ import annotations

PREFIX = "nowcast"
SITES = f"{PREFIX}:sites"  # set of site ids with a window
EVENTS_STREAM = f"{PREFIX}:events:frames"  # new frame events for the inference worker
INCOMING_STREAM = f"{PREFIX}:ingest:incoming"  # frames pushed by other processes
INCOMING_GROUP = "ingest"
COUNTS = f"{PREFIX}:ingest:counts"  # hash: accepted, quarantined:<reason>, ...
SEEN_FILES = f"{PREFIX}:ingest:seen-files"  # set of "path|size|mtime_ns" already processed
HEALTH = f"{PREFIX}:health:ingest"


def window_times(site_id: str) -> str:
    """Sorted set: member and score are the valid time in epoch seconds."""
    return f"{PREFIX}:window:{{{site_id}}}:times"


def window_frames(site_id: str) -> str:
    """Hash: epoch seconds -> encoded frame."""
    return f"{PREFIX}:window:{{{site_id}}}:frames"


def site_meta(site_id: str) -> str:
    """Hash: grid, cadence_min, norm_version, mask_version, last_ingest ..."""
    return f"{PREFIX}:site:{{{site_id}}}:meta"


def site_counts(site_id: str) -> str:
    return f"{PREFIX}:site:{{{site_id}}}:counts"


def noise_mask(site_id: str) -> str:
    """Hash: version, shape, bits (numpy packbits of the boolean mask)."""
    return f"{PREFIX}:mask:{{{site_id}}}"
