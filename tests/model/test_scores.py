"""Verification scores: hand tables, pooling, NaN cells, pysteps cross-check, storage."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from model.verification.scores import (
    THRESHOLDS_MMH,
    ScoreAccumulator,
    get_score,
    pooled_scores,
    score_names,
    threshold_key,
)


def _nan(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _rain(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 6.0) -> np.ndarray:
    """Rain rates (mm/h) rounded to 0.5 (so some equal thresholds), a third of cells dry."""
    rain = np.round(rng.exponential(scale, shape) * 2) / 2
    rain[rng.random(shape) < 0.33] = 0.0
    return rain.astype(np.float32)


# forecast / observation (1 lead, 2 x 2) and the table worked out by hand
FORECAST = np.array([[[0.0, 3.0], [1.0, 0.6]]], dtype=np.float32)
OBSERVED = np.array([[[0.5, 0.0], [2.0, 0.1]]], dtype=np.float32)


def test_hand_computed_table() -> None:
    acc = ScoreAccumulator(1, (0.5, 2.0, 30.0))
    acc.add(FORECAST, OBSERVED)
    result = acc.scores()
    # 0.5 mm/h: obs events at 0.5 (>=) and 2.0; forecast events at 3.0, 1.0, 0.6
    assert result["hits"]["0.5"] == [1]
    assert result["misses"]["0.5"] == [1]
    assert result["false_alarms"]["0.5"] == [2]
    assert result["correct_negatives"]["0.5"] == [0]
    assert result["csi"]["0.5"] == pytest.approx([1 / 4])
    assert result["far"]["0.5"] == pytest.approx([2 / 3])
    assert result["pod"]["0.5"] == pytest.approx([1 / 2])
    # 2 mm/h: the observed 2.0 is an event (>=) and is missed; 3.0 is a false alarm
    assert [result[k]["2.0"] for k in ("hits", "misses", "false_alarms")] == [[0], [1], [1]]
    assert result["correct_negatives"]["2.0"] == [2]
    assert result["csi"]["2.0"] == [0.0]  # defined, and zero
    assert result["far"]["2.0"] == [1.0]
    assert result["pod"]["2.0"] == [0.0]
    # 30 mm/h: nothing forecast, nothing observed: every score undefined
    assert result["csi"]["30.0"] == [None]
    assert result["far"]["30.0"] == [None]
    assert result["pod"]["30.0"] == [None]
    assert result["correct_negatives"]["30.0"] == [4]
    assert result["rain_mse"] == pytest.approx([(0.25 + 9.0 + 1.0 + 0.25) / 4])
    expected_corr = 2.06 / math.sqrt(10.36 * 4.26 + 1e-9)
    assert result["correlation"] == pytest.approx([expected_corr], rel=1e-6)
    assert result["n_cells"] == [4]


def test_default_thresholds_and_keys() -> None:
    acc = ScoreAccumulator(3)
    assert acc.thresholds_mmh == THRESHOLDS_MMH == (0.5, 2.0, 5.0, 10.0, 30.0)
    assert acc.hits.shape == (3, 5) and acc.hits.dtype == np.int64
    assert list(acc.scores()["csi"]) == ["0.5", "2.0", "5.0", "10.0", "30.0"]
    assert threshold_key(2) == "2.0"


def test_undefined_scores_are_none_never_zero() -> None:
    acc = ScoreAccumulator(2, (1.0,))
    forecast = np.zeros((2, 3, 3), dtype=np.float32)
    observed = np.zeros((2, 3, 3), dtype=np.float32)
    observed[0, 1, 1] = 4.0  # lead 1: an observed event nobody forecast
    acc.add(forecast, observed)
    result = acc.scores()
    assert result["pod"]["1.0"] == [0.0, None]
    assert result["csi"]["1.0"] == [0.0, None]
    assert result["far"]["1.0"] == [None, None]  # no event forecast at any lead
    empty = ScoreAccumulator(2).scores()
    assert empty["rain_mse"] == [None, None]
    assert empty["correlation"] == [None, None]
    assert all(v is None for values in empty["csi"].values() for v in values)


def test_pooling_differs_from_averaging() -> None:
    # forecast A: one cell, a hit (CSI 1); forecast B: 1 hit and 9 misses (CSI 0.1)
    obs_a = np.array([[[5.0]]], dtype=np.float32)
    obs_b = np.full((1, 1, 10), 5.0, dtype=np.float32)
    fc_b = np.zeros((1, 1, 10), dtype=np.float32)
    fc_b[0, 0, 0] = 5.0
    a = pooled_scores([obs_a], [obs_a], 1, (1.0,))["csi"]["1.0"][0]
    b = pooled_scores([fc_b], [obs_b], 1, (1.0,))["csi"]["1.0"][0]
    assert (a, b) == pytest.approx((1.0, 0.1))
    pooled = pooled_scores([obs_a, fc_b], [obs_a, obs_b], 1, (1.0,))["csi"]["1.0"][0]
    assert pooled == pytest.approx(2 / 11)
    assert pooled != pytest.approx((a + b) / 2)


def test_nan_observed_cells_are_excluded() -> None:
    rng = np.random.default_rng(1)
    forecast = _rain(rng, (2, 3, 8, 8))
    observed = _rain(rng, (2, 3, 8, 8))
    observed[:, :, :, 5:] = np.nan  # unobserved columns
    forecast[:, :, :, 5:] = 1000.0  # whatever is forecast there must not count
    with_nan = ScoreAccumulator(3)
    with_nan.add(forecast, observed)
    cropped = ScoreAccumulator(3)
    cropped.add(forecast[..., :5], observed[..., :5])
    assert with_nan.to_dict() == cropped.to_dict()
    assert with_nan.scores()["n_cells"] == [2 * 8 * 5] * 3
    total = with_nan.hits + with_nan.misses + with_nan.false_alarms + with_nan.correct_negatives
    assert (total == 2 * 8 * 5).all()


def test_nan_forecast_at_verified_cell_is_an_error() -> None:
    forecast = np.zeros((1, 2, 2), dtype=np.float32)
    forecast[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ScoreAccumulator(1).add(forecast, np.zeros((1, 2, 2), dtype=np.float32))
    observed = np.zeros((1, 2, 2), dtype=np.float32)
    observed[0, 0, 0] = np.nan  # not verified there: fine
    ScoreAccumulator(1).add(forecast, observed)


def test_shape_errors() -> None:
    acc = ScoreAccumulator(3)
    with pytest.raises(ValueError, match="n_leads=3"):
        acc.add(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="shape"):
        acc.add(np.zeros((3, 4, 4)), np.zeros((3, 4, 5)))
    with pytest.raises(ValueError, match="n_leads"):
        ScoreAccumulator(0)


def test_matches_pysteps_det_cat_fct_where_conventions_agree() -> None:
    from pysteps.verification import det_cat_fct

    rng = np.random.default_rng(7)
    shape = (3, 4, 16, 16)
    # jitter so that no value equals a threshold: >= and > then count the same events
    forecast = _rain(rng, shape, scale=15.0) + 1e-3
    observed = _rain(rng, shape, scale=15.0) + 1e-3
    acc = ScoreAccumulator(4)
    acc.add(forecast, observed)
    result = acc.scores()
    for threshold in THRESHOLDS_MMH:
        key = threshold_key(threshold)
        for lead in range(4):
            ref = det_cat_fct(
                forecast[:, lead], observed[:, lead], threshold, scores=["CSI", "FAR", "POD"]
            )
            for ours, theirs in (("csi", "CSI"), ("far", "FAR"), ("pod", "POD")):
                np.testing.assert_allclose(
                    _nan([result[ours][key][lead]]), [ref[theirs]], rtol=1e-12, equal_nan=True
                )
    assert min(result["hits"]["30.0"]) > 0  # every threshold was exercised


def test_event_convention_is_greater_or_equal() -> None:
    from pysteps.verification import det_cat_fct

    at_threshold = np.full((1, 1, 1), 0.5, dtype=np.float32)
    result = pooled_scores([at_threshold], [at_threshold], 1, (0.5,))
    assert result["hits"]["0.5"] == [1]
    assert result["csi"]["0.5"] == [1.0]
    with np.errstate(invalid="ignore"):
        reference = det_cat_fct(at_threshold, at_threshold, 0.5, scores="CSI")
    assert np.isnan(reference["CSI"])  # pysteps counts > threshold: no event


def test_mse_and_correlation_match_numpy() -> None:
    rng = np.random.default_rng(3)
    forecast = _rain(rng, (5, 2, 12, 12))
    observed = _rain(rng, (5, 2, 12, 12))
    acc = ScoreAccumulator(2)
    for b in range(5):  # one forecast at a time: pooled sums, not averaged scores
        acc.add(forecast[b], observed[b])
    result = acc.scores()
    p = forecast.astype(np.float64)
    t = observed.astype(np.float64)
    for lead in range(2):
        pl, tl = p[:, lead], t[:, lead]
        corr = np.sum(pl * tl) / np.sqrt(np.sum(pl**2) * np.sum(tl**2) + 1e-9)
        assert result["correlation"][lead] == pytest.approx(corr, rel=1e-10)
        assert result["rain_mse"][lead] == pytest.approx(np.mean((pl - tl) ** 2), rel=1e-10)


def test_dict_round_trip_through_json() -> None:
    rng = np.random.default_rng(4)
    acc = ScoreAccumulator(3)
    acc.add(_rain(rng, (2, 3, 10, 10)), _rain(rng, (2, 3, 10, 10)))
    stored = json.dumps(acc.to_dict())
    back = ScoreAccumulator.from_dict(json.loads(stored))
    assert back.to_dict() == acc.to_dict()
    assert back.scores() == acc.scores()
    json.dumps(acc.scores())  # scores are JSON-safe too
    broken = acc.to_dict()
    broken["hits"] = broken["hits"][:2]
    with pytest.raises(ValueError, match="hits"):
        ScoreAccumulator.from_dict(broken)
    broken = acc.to_dict()
    del broken["misses"]
    with pytest.raises(ValueError, match="misses"):
        ScoreAccumulator.from_dict(broken)


def test_merge_equals_adding_everything_at_once() -> None:
    rng = np.random.default_rng(5)
    forecast = _rain(rng, (4, 3, 10, 10))
    observed = _rain(rng, (4, 3, 10, 10))
    observed[1, :, 0, :] = np.nan
    whole = ScoreAccumulator(3)
    whole.add(forecast, observed)
    first, second = ScoreAccumulator(3), ScoreAccumulator(3)
    first.add(forecast[:1], observed[:1])
    second.add(forecast[1:], observed[1:])
    first.merge(second)
    for name in ("hits", "misses", "false_alarms", "correct_negatives", "n_cells"):
        np.testing.assert_array_equal(getattr(first, name), getattr(whole, name))
    for name in ("sum_squared_error_mmh2", "sum_pt", "sum_pp", "sum_tt"):
        np.testing.assert_allclose(getattr(first, name), getattr(whole, name), rtol=1e-12)
    with pytest.raises(ValueError, match="merge"):
        first.merge(ScoreAccumulator(2))
    with pytest.raises(ValueError, match="merge"):
        first.merge(ScoreAccumulator(3, (1.0,)))


def test_score_registry() -> None:
    assert set(score_names()) == {"csi", "far", "pod"}
    hits = np.array([2, 0, 0])
    misses = np.array([1, 3, 0])
    false_alarms = np.array([1, 0, 0])
    np.testing.assert_allclose(get_score("csi")(hits, misses, false_alarms), [0.5, 0.0, np.nan])
    np.testing.assert_allclose(
        get_score("far")(hits, misses, false_alarms), [1 / 3, np.nan, np.nan]
    )
    np.testing.assert_allclose(get_score("POD")(hits, misses, false_alarms), [2 / 3, 0.0, np.nan])
    assert np.isnan(get_score("csi")(0, 0, 0))
    with pytest.raises(ValueError, match="csi, far, pod"):
        get_score("ets")
