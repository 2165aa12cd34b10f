"""Why an issue time is not forecast, in words: pure functions of the window's valid times.

`behind_reason`: the issue time is too old to be worth forecasting now (the worker fell
behind); `describe_gap`: the frames a gap is missing. The inference worker records them
(`service.inference`, `service.status_store`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.window import WindowGapError
from service.methods_runner import N_INPUTS


def behind_reason(
    issue_time: datetime, epochs: list[int], window_frames: int, max_behind_min: float
) -> str | None:
    """Why ``issue_time`` is too old to forecast now, or None.

    ``epochs``: the site's window, valid times in unix seconds, oldest first. Too old: more
    than ``max_behind_min`` before the newest frame, or its inputs already rolled out of a
    full window (``window_frames``).
    """
    if not epochs:
        return None
    newest = datetime.fromtimestamp(epochs[-1], UTC)
    behind_min = (newest - issue_time).total_seconds() / 60
    rolled_out = len(epochs) >= window_frames and issue_time.timestamp() < epochs[N_INPUTS - 1]
    if behind_min <= max_behind_min and not rolled_out:
        return None
    return (
        f"behind: {behind_min:g} min older than the newest frame "
        f"({newest:%Y-%m-%dT%H:%MZ}); skipped to forecast the newest first"
    )


def _minute(t: datetime) -> str:
    return f"{t:%Y-%m-%dT%H:%MZ}"


def describe_gap(gap: WindowGapError, before: int | None, resumed: int | None) -> str:
    """The frames missing in a gap, in words; ``before``/``resumed``: epochs (s) around it."""
    if before is None or resumed is None:
        return "missing " + ", ".join(_minute(t) for t in gap.missing)
    step = timedelta(minutes=gap.cadence_min)
    first = datetime.fromtimestamp(before, UTC) + step
    last = datetime.fromtimestamp(resumed, UTC) - step
    n_missing = round((last - first) / step) + 1
    if n_missing == 1:
        return f"missing {_minute(first)}"
    return f"missing {n_missing:,} frames from {_minute(first)} to {_minute(last)}"
