"""How sure a difference between two methods' pooled scores is, from the same windows.

Two evaluation reports of the same windows (``nowcast evaluate``'s ``counts_by_event``: each
event's contingency tables and sums) give a statistic per method, e.g. the mean over the
leads of the pooled CSI at 0.5 mm/h. Their difference is judged by the delete-one-event
jackknife with Student's t (Efron & Tibshirani 1993, ch. 11): the windows of one event share
all but one frame, so the event is the independent unit, and with as few events as a test
split has the jackknife-t holds its level where a bootstrap over events does not (the same
reasoning as the reliability bands, `model.verification.probabilistic`).

    d = s(A) - s(B) over all events;  d_i the same without event i;
    se = sqrt((n - 1) / n * sum_i (d_i - mean(d_i))^2);  95 % interval d +- t(0.975, n - 1) se

Pure functions on plain dicts; scores as `model.verification.scores.ScoreAccumulator` gives
them (CSI dimensionless, rain MSE in (mm/h)^2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from model.verification.scores import ScoreAccumulator

Statistic = Callable[[ScoreAccumulator], float | None]


def mean_csi(threshold: str) -> Statistic:
    """The mean over the leads of the pooled CSI at ``threshold`` ("0.5"), leads where CSI is
    undefined left out; None when it is undefined at every lead or not scored."""

    def statistic(acc: ScoreAccumulator) -> float | None:
        values = [v for v in acc.scores()["csi"].get(threshold, []) if v is not None]
        return float(np.mean(values)) if values else None

    return statistic


def mean_rain_mse(acc: ScoreAccumulator) -> float | None:
    """The mean over the leads of the pooled rain-rate MSE ((mm/h)^2)."""
    values = [v for v in acc.scores()["rain_mse"] if v is not None]
    return float(np.mean(values)) if values else None


def _pooled(by_event: Mapping[str, ScoreAccumulator], leave_out: str | None) -> ScoreAccumulator:
    first = next(iter(by_event.values()))
    total = ScoreAccumulator(first.n_leads, first.thresholds_mmh)
    for name, acc in by_event.items():
        if name != leave_out:
            total.merge(acc)
    return total


def paired_difference(
    a_by_event: Mapping[str, ScoreAccumulator],
    b_by_event: Mapping[str, ScoreAccumulator],
    statistic: Statistic,
    level: float = 0.95,
) -> dict[str, Any]:
    """``statistic`` of A minus that of B, pooled over the events both were scored on, with
    its jackknife-t interval: {difference, low, high, events}; low and high None with fewer
    than 3 events or where a leave-one-out statistic is undefined. ValueError when the two
    hold different events (they must be the same windows)."""
    from scipy import stats

    if set(a_by_event) != set(b_by_event):
        raise ValueError("the two reports hold different events: compare the same windows")
    if not a_by_event:
        raise ValueError("no events to compare")
    names = sorted(a_by_event)

    def difference(leave_out: str | None) -> float | None:
        a = statistic(_pooled(a_by_event, leave_out))
        b = statistic(_pooled(b_by_event, leave_out))
        return None if a is None or b is None else a - b

    full = difference(None)
    out: dict[str, Any] = {"difference": full, "low": None, "high": None, "events": len(names)}
    if full is None or len(names) < 3:
        return out
    leave_one_out = [difference(name) for name in names]
    if any(d is None for d in leave_one_out):
        return out
    d = np.asarray(leave_one_out, dtype=np.float64)
    n = len(d)
    se = float(np.sqrt((n - 1) / n * np.sum((d - d.mean()) ** 2)))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
    out.update(low=full - half, high=full + half)
    return out


def counts_by_event(report: Mapping[str, Any]) -> dict[str, ScoreAccumulator] | None:
    """A report's per-event counts, or None where it has none (older reports)."""
    raw = report.get("counts_by_event")
    if not raw:
        return None
    return {name: ScoreAccumulator.from_dict(data) for name, data in raw.items()}


def observed_cells_by_event(
    by_event: Mapping[str, ScoreAccumulator], threshold: str
) -> dict[str, int]:
    """Cells observed at or above ``threshold`` ("0.5") per event, over all leads (hits plus
    misses): how many events a score at that threshold rests on."""
    out = {}
    for name, acc in by_event.items():
        keys = [str(float(t)) for t in acc.thresholds_mmh]
        if threshold in keys:
            j = keys.index(threshold)
            out[name] = int(acc.hits[:, j].sum() + acc.misses[:, j].sum())
    return out


def compare_reports(
    a: Mapping[str, Any], b: Mapping[str, Any], thresholds: tuple[str, ...] = ("0.5", "2.0", "5.0")
) -> list[dict[str, Any]]:
    """Report A minus report B on their per-event counts, one row per score: {score ("mean
    CSI(0.5)", ..., "mean rain MSE ((mm/h)^2)"), threshold (its key, None for the MSE), and
    `paired_difference`'s difference, low, high, events}. ValueError where either lacks
    per-event counts or they hold different events."""
    a_events, b_events = counts_by_event(a), counts_by_event(b)
    if a_events is None or b_events is None:
        raise ValueError("both reports need per-event counts (evaluate them again)")
    rows = [
        {
            "score": f"mean CSI({float(t):g})",
            "threshold": t,
            **paired_difference(a_events, b_events, mean_csi(t)),
        }
        for t in thresholds
    ]
    mse = paired_difference(a_events, b_events, mean_rain_mse)
    rows.append({"score": "mean rain MSE ((mm/h)^2)", "threshold": None, **mse})
    return rows
