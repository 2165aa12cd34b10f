"""Per-lead probability matching: monotone, faithful to the target's quantiles, stored in the
checkpoint's meta and applied by the convlstm method by default."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.normalize import NormParams
from model.data.split import WindowRef
from model.evaluation.calibration_fit import (
    block_cross_validation,
    compare,
    csi_summary,
    fit_and_judge,
)
from model.methods import get_method
from model.nets.architectures import build_model
from model.nets.checkpoint import load_checkpoint, save_checkpoint, update_meta
from model.nets.config import NetworkConfig
from model.verification.calibration import (
    LeadCalibration,
    apply_calibration,
    apply_quantile_pairs,
    cap_at_inputs,
    fit_calibration,
    fit_quantile_pairs,
    quantile_levels,
)

TINY = NetworkConfig(out_frames=3, frame_cells=16, hidden_channels=(4,))
RAIN_GREY = 0.352  # about 0.5 mm/h under Marshall-Palmer, grey = (dBZ + 10) / 80


def blurred_and_observed(rng: np.random.Generator, n: int = 6, leads: int = 3):
    """Observed fields (rain in a few bright cells) and a forecast that is their dim blur."""
    observed = np.where(
        rng.random((n, leads, 16, 16)) < 0.1, rng.uniform(0.3, 0.7, (n, leads, 16, 16)), 0.0
    )
    forecast = 0.5 * observed + 0.03 * rng.random(observed.shape)
    return forecast.astype(np.float32), observed.astype(np.float32)


def test_levels_are_increasing_from_0_to_1_and_dense_in_the_wet_tail():
    levels = quantile_levels(201)
    assert levels[0] == 0.0 and levels[-1] == 1.0 and np.all(np.diff(levels) > 0)
    assert np.count_nonzero(levels > 0.93) > 60  # the wettest 7 % get many pairs


def test_the_mapping_is_monotone_and_fixes_0_and_1():
    rng = np.random.default_rng(0)
    forecast, observed = blurred_and_observed(rng)
    x, y = fit_quantile_pairs(forecast, observed, quantile_levels(51))
    assert np.all(np.diff(x) > 0) and np.all(np.diff(y) >= 0)
    grid = np.linspace(0.0, 1.0, 1001)
    mapped = apply_quantile_pairs(grid, x, y)
    assert np.all(np.diff(mapped) >= 0)
    assert mapped[0] == 0.0 and mapped[-1] == 1.0


def test_identical_distributions_give_the_identity():
    values = np.random.default_rng(1).random(5000)
    x, y = fit_quantile_pairs(values, values.copy(), quantile_levels(101))
    grid = np.linspace(0.0, 1.0, 333)
    np.testing.assert_allclose(apply_quantile_pairs(grid, x, y), grid, atol=1e-6)


def test_mapped_forecasts_take_the_target_quantiles():
    rng = np.random.default_rng(2)
    forecast = rng.beta(2, 8, 20000)  # weak, like a blurred BCE output
    observed = rng.beta(2, 3, 30000)  # another sample size and distribution
    levels = quantile_levels(201)
    x, y = fit_quantile_pairs(forecast, observed, levels)
    mapped = apply_quantile_pairs(forecast, x, y)
    probe = np.linspace(0.02, 0.98, 25)
    np.testing.assert_allclose(np.quantile(mapped, probe), np.quantile(observed, probe), atol=0.01)


def test_ties_in_the_forecast_quantiles_are_merged():
    forecast = np.r_[np.zeros(900), np.linspace(0.1, 0.2, 100)]  # 90 % exactly 0
    observed = np.linspace(0.0, 1.0, 1000)
    x, y = fit_quantile_pairs(forecast, observed, quantile_levels(101))
    assert np.all(np.diff(x) > 0) and np.all(np.diff(y) >= 0)


def test_bad_samples_are_refused():
    with pytest.raises(ValueError, match="no value"):
        fit_quantile_pairs(np.array([np.nan]), np.ones(3) / 2, quantile_levels(5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_quantile_pairs(np.array([1.5]), np.ones(3) / 2, quantile_levels(5))
    with pytest.raises(ValueError, match="levels"):
        fit_quantile_pairs(np.ones(3) / 2, np.ones(3) / 2, [0.5, 0.2])
    with pytest.raises(ValueError, match="monotone"):
        LeadCalibration((0.0, 1.0), ((0.0, 0.5, 1.0),), ((0.0, 0.7, 0.6),))


def test_each_lead_has_its_own_table_and_dry_stays_dry():
    rng = np.random.default_rng(3)
    forecast, observed = blurred_and_observed(rng)
    forecast[:, 2] *= 0.5  # the blur deepens with lead
    calibration = fit_calibration(forecast, observed, n_quantiles=101)
    assert calibration.leads == 3
    assert calibration.forecast_grey[0] != calibration.forecast_grey[2]
    mapped = apply_calibration(forecast, calibration)
    assert mapped.shape == forecast.shape and mapped.dtype == np.float32
    for k in range(3):  # the wet fraction of each lead comes back to the observed one
        wet = (mapped[:, k] >= RAIN_GREY).mean()
        assert wet == pytest.approx((observed[:, k] >= RAIN_GREY).mean(), abs=0.01)
    assert apply_calibration(np.zeros((1, 2, 4, 4)), calibration).max() == 0.0
    with pytest.raises(ValueError, match="L <= 3"):
        apply_calibration(np.zeros((1, 4, 4, 4)), calibration)


def test_the_tables_round_trip_through_the_checkpoint_meta(tmp_path):
    rng = np.random.default_rng(4)
    calibration = fit_calibration(*blurred_and_observed(rng), n_quantiles=21)
    path = save_checkpoint(tmp_path / "c.safetensors", build_model(TINY), TINY, {"epoch": 2})
    _, _, before = load_checkpoint(path)
    update_meta(path, {"calibration": {**calibration.to_dict(), "use": True}})
    _, config, meta = load_checkpoint(path)
    assert config == TINY and meta["epoch"] == 2
    assert meta["weights_created_utc"] == before["created_utc"]
    assert LeadCalibration.from_dict(meta["calibration"]) == calibration


def _checkpoint_with(tmp_path, calibration: LeadCalibration, use: bool):
    path = tmp_path / "c.safetensors"
    meta = {"calibration": {**calibration.to_dict(), "use": use}}
    return save_checkpoint(path, build_model(TINY), TINY, meta)


def test_the_method_applies_the_calibration_by_default_and_says_so(tmp_path):
    # a table that lifts every grey level: the calibrated forecast is the raw one mapped
    lift = LeadCalibration((0.0, 1.0), ((0.0, 0.5, 1.0),) * 3, ((0.0, 0.8, 1.0),) * 3)
    path = _checkpoint_with(tmp_path, lift, use=True)
    inputs = np.random.default_rng(5).random((2, 5, 16, 16)).astype(np.float32)
    calibrated = get_method("eulerian-convlstm", checkpoint=path, device="cpu")
    raw = get_method("eulerian-convlstm", checkpoint=path, device="cpu", calibrated=False)
    assert calibrated.meta["calibration_applied"] and not raw.meta["calibration_applied"]
    raw_out = raw(inputs, 2)
    np.testing.assert_allclose(calibrated(inputs, 2), apply_calibration(raw_out, lift), atol=1e-6)


def test_a_calibration_that_did_not_help_is_not_applied(tmp_path, caplog):
    lift = LeadCalibration((0.0, 1.0), ((0.0, 0.5, 1.0),) * 3, ((0.0, 0.8, 1.0),) * 3)
    method = get_method("eulerian-convlstm", checkpoint=_checkpoint_with(tmp_path, lift, use=False))
    assert method.meta["calibration_applied"] is False
    assert "did not help" in caplog.text


def test_judging_uses_only_leads_with_observed_events():
    norm = NormParams()
    truth = np.zeros((4, 3, 8, 8), np.float32)
    truth[:, 0, :2, :2] = 0.5  # rain only at lead 1
    forecast = np.full_like(truth, 0.1)  # raw: nothing forecast -> CSI 0 at lead 1
    calibrated = truth.copy()
    calibrated[:, 1:, 0, 0] = 0.5  # a false alarm at leads 2, 3: CSI 0 there
    raw_scores = csi_summary(forecast, truth, norm)
    cal_scores = csi_summary(calibrated, truth, norm)
    assert raw_scores["defined_leads"] == 1 and cal_scores["defined_leads"] == 3
    judged = compare(raw_scores, cal_scores)
    assert judged["leads_with_observed_events"] == [1]
    assert judged["mean_csi_raw"] == 0.0 and judged["mean_csi_calibrated"] == 1.0
    assert judged["helps"] and judged["observed_event_cells"] == 16


def test_tables_that_buy_csi_with_rain_that_never_falls_are_not_used():
    norm = NormParams()
    truth = np.zeros((4, 3, 8, 8), np.float32)
    truth[:, :, :4, :4] = 0.45  # about 1 mm/h
    raw = np.zeros_like(truth)
    raw[:, :, :2, :2] = 0.45  # a quarter of the rain, right intensity
    hotter = np.where(truth > 0, 0.9, 0.0).astype(np.float32)  # all of it, at ~280 mm/h
    judged = compare(csi_summary(raw, truth, norm), csi_summary(hotter, truth, norm))
    assert judged["mean_csi_calibrated"] > judged["mean_csi_raw"]
    assert judged["mean_rain_mse_calibrated"] > judged["mean_rain_mse_raw"]
    assert not judged["helps"]


def test_fit_and_judge_reports_validation_and_train_block_cv():
    rng = np.random.default_rng(6)
    forecast, observed = blurred_and_observed(rng, n=8)
    refs = [WindowRef(0, 30 * (i // 2) + i % 2) for i in range(8)]  # 4 blocks of 2 windows
    norm = NormParams()
    cross = block_cross_validation(refs, forecast, observed, 30, norm, folds=2, n_quantiles=51)
    assert cross["blocks"] == 4 and cross["windows"] == 8
    assert cross["mean_csi_calibrated"] > cross["mean_csi_raw"]  # the dim blur is lifted
    tables, record = fit_and_judge(
        (refs, forecast, observed), (refs[:2], forecast[:2], observed[:2]), 30, norm, 51, 2
    )
    assert tables.leads == 3 and record["use"] is True
    assert record["validation"]["windows"] == 2
    assert "leads with observed events" in record["decision_rule"]


def test_a_validation_split_dry_at_late_leads_leaves_the_decision_to_the_cross_validation():
    rng = np.random.default_rng(6)
    forecast, observed = blurred_and_observed(rng, n=8)
    refs = [WindowRef(0, 30 * (i // 2) + i % 2) for i in range(8)]  # 4 blocks of 2 windows
    norm = NormParams()
    # validation: observed rain at lead 1 only, where the raw forecast is perfect and any
    # lifting of the blur can only add false alarms
    val_truth = np.zeros((2, 3, *observed.shape[2:]), np.float32)
    val_truth[:, 0] = observed[:2, 0]
    val_forecast = val_truth.copy()
    val_forecast[:, 1:] = 0.2  # dim blur at the dry leads
    validation = ([refs[0], refs[1]], val_forecast, val_truth)
    _tables, record = fit_and_judge((refs, forecast, observed), validation, 30, norm, 51, 2)
    assert record["validation"]["leads_with_observed_events"] == [1]
    assert record["judged_on"] == "train_block_cross_validation"
    cross = record["train_block_cross_validation"]
    assert record["use"] is cross["helps"] is True
    # with rain at every validation lead, the validation split decides
    _tables, record = fit_and_judge(
        (refs, forecast, observed), (refs[:2], forecast[:2], observed[:2]), 30, norm, 51, 2
    )
    assert record["judged_on"] == "validation" and record["use"] is record["validation"]["helps"]


def test_calibrated_forecasts_never_exceed_their_own_inputs_brightest_cell():
    forecast = np.full((2, 3, 4, 4), 0.9, np.float32)
    forecast[1, :, 0, 0] = 0.1
    inputs = np.zeros((2, 5, 4, 4), np.float32)
    inputs[0, 2, 1, 1] = 0.6  # forecast 0: capped at 0.6
    inputs[1, 4] = 0.95  # forecast 1: brighter inputs, nothing to cap
    inputs[1, 0, 0, 0] = np.nan  # no-data cells are ignored
    capped = cap_at_inputs(forecast, inputs)
    assert capped.dtype == np.float32
    assert np.all(capped[0] == np.float32(0.6))
    np.testing.assert_array_equal(capped[1], forecast[1])
    with pytest.raises(ValueError, match="inputs"):
        cap_at_inputs(forecast, inputs[:1])


def test_matching_to_the_last_input_keeps_ranks_and_takes_the_observed_values():
    from model.experiments.last_input_matching import match_to_last_input

    rng = np.random.default_rng(0)
    forecast = rng.uniform(0.1, 0.3, (2, 3, 8, 8)).astype(np.float32)
    forecast[:, :, :2] = 0.0  # dry rows stay dry
    last = rng.uniform(0.0, 0.8, (2, 8, 8)).astype(np.float32)
    last[:, :3] = 0.0  # the observation's dry cells
    matched = match_to_last_input(forecast, last)
    assert matched.shape == forecast.shape
    assert np.all(matched[:, :, :2] == 0.0)
    for n in range(2):
        wet = forecast[n, 0] > 0
        assert set(np.round(matched[n, 0][wet], 6)) <= set(np.round(last[n].ravel(), 6))
        order = np.argsort(forecast[n, 0][wet])
        assert np.all(np.diff(matched[n, 0][wet][order]) >= 0)  # ranks kept
