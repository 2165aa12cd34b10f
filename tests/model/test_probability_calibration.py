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


def _regime_report() -> dict:
    """Pooled bins observed as forecast; by wet fraction, dry issue times observe half, wet
    ones double (capped) at 2 mm/h; the dry regime has too few cases at 0.5 mm/h to fit (the
    pooled table stays)."""
    report = _report(lambda p: p)
    pooled = report["probabilistic"]["reliability"]["2.0"][0]
    dry = {**pooled, "observed_frequency": [0.5 * p for p in pooled["forecast_probability"]]}
    wet = {
        **pooled,
        "observed_frequency": [min(1.0, 2 * p) for p in pooled["forecast_probability"]],
    }
    thin = {**pooled, "count": [10] * 10}
    report["probabilistic"]["reliability"]["0.5"] = [pooled]
    report["probabilistic"]["reliability_by_regime"] = {
        "wet-fraction": {
            "dry": {"0.5": [thin], "2.0": [dry]},
            "wet": {"0.5": [pooled], "2.0": [wet]},
        }
    }
    return report


def test_a_calibration_by_regime_calibrates_each_forecast_by_its_own_issue_time(tmp_path):
    calibration = fit_calibration(_regime_report(), "test", regime="wet-fraction")
    assert calibration.by_regime and calibration.regime == "wet-fraction"
    # the dry regime's thin 0.5 mm/h table falls back to the pooled one
    assert calibration.points[0]["0.5"] == fit_calibration(_regime_report(), "t").points[0]["0.5"]
    probability = np.full((2, 1, 2, 1, 1), 0.45, dtype=np.float32)  # (B, L, T, H, W)
    out = calibration.apply(probability, (0.5, 2.0), ["dry", "wet"])
    np.testing.assert_allclose(out[0, 0, 1], 0.225, atol=1e-6)  # dry: half at 2 mm/h
    np.testing.assert_allclose(out[1, 0, 1], 0.45, atol=1e-6)  # wet: double, capped by 0.5 mm/h's
    with pytest.raises(ValueError, match="give each of the 2 forecasts its label"):
        calibration.apply(probability, (0.5, 2.0))
    with pytest.raises(ValueError, match="'initiating' is not a wet-fraction regime"):
        calibration.apply(probability, (0.5, 2.0), ["dry", "initiating"])
    again = ProbabilityCalibration.from_json(calibration.to_json())
    assert again == calibration
    moved = calibration.to_json().replace('"wet_fraction": 0.05', '"wet_fraction": 0.1')
    with pytest.raises(ValueError, match="fit the calibration again"):
        ProbabilityCalibration.from_json(moved)
    # the labels come from the forecasts' own inputs
    bounds, zr = (-10.0, 70.0), (200.0, 1.6)
    inputs = np.zeros((2, 5, 10, 10), dtype=np.float32)
    inputs[1, -1] = 0.5  # about 2.7 mm/h everywhere
    assert calibration.labels_of(inputs, bounds, zr) == ["dry", "wet"]
    assert fit_calibration(_regime_report(), "t").labels_of(inputs, bounds, zr) is None
    with pytest.raises(ValueError, match="no reliability per new-echoes regime"):
        fit_calibration(_regime_report(), "test", regime="new-echoes")
    with pytest.raises(ValueError, match="unknown issue-time regime"):
        fit_calibration(_regime_report(), "test", regime="moon-phase")


def test_the_judge_ships_the_form_with_the_lower_validation_brier_score(tmp_path):
    import json
    import subprocess
    import sys

    def report(brier: float, calibration: str) -> dict:
        bins = {"forecast_probability": [0.05], "observed_frequency": [0.05], "count": [500]}
        scores = {
            "brier": {"0.5": [brier] * 15, "2.0": [brier] * 15},
            "brier_skill": {"0.5": [0.3] * 15, "2.0": [0.2] * 15},
            "reliability": {"0.5": [bins] * 15, "2.0": [bins] * 15},
        }
        return {
            "method": "m",
            "split": "validation (blocks of 30 frames)",
            "probability_calibration": calibration,
            "probabilistic": scores,
        }

    files = {}
    for name, brier, calibration in (
        ("raw", 0.06, "none (raw probabilities)"),
        ("pooled", 0.04, "training blocks"),
        ("regime", 0.03, "training blocks, by issue-time regime"),
        ("other", 0.035, "training blocks, by another regime"),
    ):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(report(brier, calibration)))
    record = tmp_path / "record.json"
    command = [
        sys.executable, "-m", "model.experiments.judge_probability_calibration",
        str(files["raw"]), str(files["pooled"]), "--form", f"new-echoes={files['regime']}",
        "--form", f"wet-fraction={files['other']}",
        "--record", str(record),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    entry = json.loads(record.read_text())["methods"]["m"]
    assert entry["shipped"] and entry["form"] == "new-echoes"
    assert "(new-echoes; new-echoes 0.03000; wet-fraction 0.03500)" in done.stdout
    for name in ("regime", "other"):
        files[name].write_text(json.dumps(report(0.05, "training blocks, by regime")))
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    entry = json.loads(record.read_text())["methods"]["m"]
    assert entry["shipped"] and entry["form"] == "pooled"
