"""The uncertainty of a difference between two methods' pooled scores
(model.verification.paired): the delete-one-event jackknife-t."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from model.verification.paired import (
    counts_by_event,
    mean_csi,
    mean_rain_mse,
    paired_difference,
)
from model.verification.scores import ScoreAccumulator


def _acc(hits: int, misses: int, false_alarms: int, sse: float = 0.0) -> ScoreAccumulator:
    """Two leads, one threshold (0.5 mm/h), the same table at both leads; 100 cells."""
    acc = ScoreAccumulator(2, (0.5,))
    acc.hits[:] = hits
    acc.misses[:] = misses
    acc.false_alarms[:] = false_alarms
    acc.correct_negatives[:] = 100 - hits - misses - false_alarms
    acc.n_cells[:] = 100
    acc.sum_squared_error_mmh2[:] = sse
    return acc


def test_the_difference_and_its_jackknife_t_interval_match_a_hand_computation():
    events = [f"e{i}" for i in range(5)]
    a = {e: _acc(10 + i, 5, 5) for i, e in enumerate(events)}
    b = {e: _acc(10, 5 + i, 5) for i, e in enumerate(events)}
    csi = mean_csi("0.5")
    out = paired_difference(a, b, csi)

    def pooled_csi(tables):
        h, m, f = (sum(t[k] for t in tables) for k in range(3))
        return h / (h + m + f)

    a_t = [(10 + i, 5, 5) for i in range(5)]
    b_t = [(10, 5 + i, 5) for i in range(5)]
    full = pooled_csi(a_t) - pooled_csi(b_t)
    loo = np.array(
        [pooled_csi(a_t[:i] + a_t[i + 1 :]) - pooled_csi(b_t[:i] + b_t[i + 1 :]) for i in range(5)]
    )
    se = np.sqrt(4 / 5 * np.sum((loo - loo.mean()) ** 2))
    half = stats.t.ppf(0.975, 4) * se
    assert out["events"] == 5
    assert out["difference"] == pytest.approx(full)
    assert out["low"] == pytest.approx(full - half) and out["high"] == pytest.approx(full + half)
    assert out["low"] > 0  # A beats B in every event: the interval excludes 0


def test_a_method_against_itself_differs_by_exactly_nothing_and_mixed_events_straddle_zero():
    events = {f"e{i}": _acc(10 + 3 * i, 5, 5, sse=2.0 * i) for i in range(4)}
    same = paired_difference(events, events, mean_rain_mse)
    assert same["difference"] == 0 and same["low"] == 0 and same["high"] == 0
    # A better in two events, worse in two: the interval straddles 0
    a = {f"e{i}": _acc(20 if i % 2 else 5, 5, 5) for i in range(4)}
    b = {f"e{i}": _acc(5 if i % 2 else 20, 5, 5) for i in range(4)}
    mixed = paired_difference(a, b, mean_csi("0.5"))
    assert mixed["low"] < 0 < mixed["high"]


def test_too_few_or_different_events_are_said_plainly():
    two = {"e0": _acc(10, 5, 5), "e1": _acc(12, 5, 5)}
    out = paired_difference(two, two, mean_csi("0.5"))
    assert out["difference"] == 0 and out["low"] is None and out["events"] == 2
    with pytest.raises(ValueError, match="different events"):
        paired_difference(two, {"e0": _acc(10, 5, 5)}, mean_csi("0.5"))
    assert counts_by_event({"method": "m"}) is None
    report = {"counts_by_event": {name: acc.to_dict() for name, acc in two.items()}}
    again = counts_by_event(report)
    assert again is not None and (again["e1"].hits == two["e1"].hits).all()


def test_the_card_tabulates_each_comparison_or_says_why_not():
    from model.evaluation.card import target_uncertainty

    def report(method: str, hits: int) -> dict:
        tables = {f"e{i}": _acc(hits + i, 5, 5, sse=1.0).to_dict() for i in range(5)}
        return {"method": method, "counts_by_event": tables}

    text = target_uncertainty([report("convlstm", 12), report("extrapolation", 10)])
    assert "over the 5 test events" in text
    assert "| mean CSI(0.5) | `extrapolation` | +0." in text and "| 5 of 5 |" in text
    share = 21 / sum(17 + i for i in range(5))  # e4's hits + misses over all events
    assert f"`e4` {share:.0%} at 0.5 mm/h" in text and "rests mostly on one event" not in text
    assert "| mean rain MSE ((mm/h)^2) | `extrapolation` | +0.000 | +0.000 to +0.000 |" in text
    assert "`sprog`" not in text  # not evaluated: not compared
    assert "Not assessed" in target_uncertainty([{"method": "convlstm"}])
    # one event holding nearly all the rain: said plainly
    tables = {f"e{i}": _acc(90 if i == 0 else 0, 5 if i == 0 else 1, 5).to_dict() for i in range(5)}
    one = [{"method": m, "counts_by_event": tables} for m in ("convlstm", "extrapolation")]
    share = 95 / (95 + 4)  # e0's observed cells against every event's
    expected = f"`e0` {share:.0%} at 0.5 mm/h. So the verdict rests mostly on one event"
    assert expected in target_uncertainty(one)
