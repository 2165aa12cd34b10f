"""Reliability calibration of probabilities (model.verification.probability_calibration):
fitted from a training-split report's reliability bins, monotone, applied per lead and
threshold, refused when malformed."""

from __future__ import annotations

import numpy as np
import pytest

from model.verification.probability_calibration import (
    ProbabilityCalibration,
    fit_calibration,
    load_calibration,
)


def _report(observed_of) -> dict:
    """A one-lead report: bins at 0.05, 0.15, ... 0.95 with 1000 cases each, observed
    frequency ``observed_of(p)``."""
    p = [0.05 + 0.1 * i for i in range(10)]
    bins = {
        "forecast_probability": p,
        "observed_frequency": [observed_of(v) for v in p],
        "count": [1000] * 10,
    }
    return {"method": "m", "probabilistic": {"reliability": {"2.0": [bins]}}}


def test_an_over_confident_method_is_pulled_toward_what_was_observed():
    calibration = fit_calibration(_report(lambda p: 0.5 * p + 0.1), "test")
    probability = np.linspace(0, 1, 11, dtype=np.float32).reshape(1, 1, 1, 11)  # (L, T, H, W)
    out = calibration.apply(probability, (2.0,))
    expected = np.clip(0.5 * np.clip(probability, 0.05, 0.95) + 0.1, 0, 1)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert (np.diff(out[0, 0, 0]) >= 0).all()  # never reorders two forecasts


def test_a_non_monotone_reliability_curve_becomes_monotone_and_others_stay_as_they_are():
    noisy = fit_calibration(_report(lambda p: p + (0.2 if 0.4 < p < 0.5 else 0.0)), "test")
    _x, y = noisy.points[0]["2.0"]
    assert (np.diff(y) >= 0).all()
    probability = np.full((1, 2, 2, 2), 0.3, np.float32)  # thresholds 0.5 (no table) and 2
    out = noisy.apply(probability, (0.5, 2.0))
    np.testing.assert_allclose(out[0, 0], 0.3)  # no table for 0.5 mm/h: unchanged
    again = ProbabilityCalibration.from_json(noisy.to_json())
    assert again.points == noisy.points


def test_a_falling_table_is_refused_and_a_method_without_one_is_served_raw(tmp_path):
    bad = '{"method": "m", "fitted_on": "x", "points": [{"2.0": [[0.1, 0.5], [0.6, 0.2]]}]}'
    with pytest.raises(ValueError, match="must rise"):
        ProbabilityCalibration.from_json(bad)
    assert load_calibration("nothing-here", tmp_path) is None


def test_a_higher_threshold_never_becomes_more_likely_than_a_lower_one():
    low = _report(lambda p: 0.5 * p)  # 0.5 mm/h: over-confident
    high = _report(lambda p: min(1.0, 2 * p))  # 2 mm/h: under-confident
    low["probabilistic"]["reliability"]["2.0"] = high["probabilistic"]["reliability"]["2.0"]
    low["probabilistic"]["reliability"]["0.5"] = _report(lambda p: 0.5 * p)["probabilistic"][
        "reliability"
    ]["2.0"]
    calibration = fit_calibration(low, "test")
    probability = np.full((1, 2, 1, 1), 0.4, np.float32)
    out = calibration.apply(probability, (0.5, 2.0))
    assert out[0, 1, 0, 0] <= out[0, 0, 0, 0] == pytest.approx(0.2)
