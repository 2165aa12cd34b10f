"""Fitting and checking the ConvLSTM's calibration (``nowcast calibrate``).

The tables (`model.verification.calibration`) are fitted on the raw forecasts of the
TRAINING windows of the checkpoint's own time-block split, then judged on data they never saw:

- the validation windows, raw against calibrated. The decision compares the mean CSI at
  0.5 mm/h over the leads whose validation observations hold at least one event, and asks
  that the rain MSE be no higher (probability matching can buy CSI with intensities the
  observations never reach: the Lagrangian ConvLSTM's test MSE went from 1.17 to 11.4): at a lead
  with no observed event CSI can only be 0 (any forecast rain is a false alarm) or undefined
  (none), so it measures false alarms, not skill, and a mean over a different set of
  defined leads would compare unlike things. The plain 15-lead means are recorded too;
- a cross-validation over the training blocks (tables fitted on the other folds' blocks):
  the network saw these windows in training, so its raw scores there are optimistic, but the
  calibration is judged out of sample.

The decision (`DECISION_RULE`) rests on the validation split when its observations hold an
event at every lead; otherwise on the cross-validation. Calibration exists for the long leads
(a pixel-loss network blurs its rain below the thresholds as the lead grows): a validation
split whose rain ends after a few leads cannot judge it there, and would judge it on the
leads where the raw forecast is still sharp.

Every forecast is the network's fp32 output through the same windows and normaliser as
``nowcast evaluate`` (`model.evaluation.evaluate.iter_forecasts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ingest.normalize import NormParams
from model.data.events import Event
from model.data.split import WindowRef
from model.evaluation.evaluate import iter_forecasts
from model.methods import NowcastMethod
from model.verification.calibration import LeadCalibration, apply_calibration, fit_calibration
from model.verification.scores import grey_to_mmh, pooled_scores

THRESHOLD = "0.5"


def collect_forecasts(
    method: NowcastMethod,
    events: Sequence[Event],
    windows: Sequence[WindowRef],
    in_frames: int = 5,
    out_frames: int = 15,
) -> tuple[list[WindowRef], np.ndarray, np.ndarray]:
    """``(refs, forecast, truth)``: grey (N, out, H, W) float32 of ``windows``, in refs order."""
    refs = sorted(windows, key=lambda w: w.event_index)  # iter_forecasts goes event by event
    pairs = [
        (f, t) for _, f, t in iter_forecasts(method, events, in_frames, out_frames, windows=refs)
    ]
    if not pairs:
        raise ValueError("no window to forecast")
    forecast = np.concatenate([f for f, _ in pairs]).astype(np.float32, copy=False)
    truth = np.concatenate([t for _, t in pairs]).astype(np.float32, copy=False)
    return refs, forecast, truth


def csi_summary(forecast_grey: np.ndarray, truth_grey: np.ndarray, norm: NormParams) -> dict:
    """CSI/FAR/POD at 0.5 mm/h per lead, contingency counts, and the 15-lead mean CSI."""
    scores = pooled_scores(
        [grey_to_mmh(forecast_grey, norm)], [grey_to_mmh(truth_grey, norm)], truth_grey.shape[1]
    )
    csi = scores["csi"][THRESHOLD]
    defined = [c for c in csi if c is not None]
    return {
        "csi": csi,
        "far": scores["far"][THRESHOLD],
        "pod": scores["pod"][THRESHOLD],
        "hits": scores["hits"][THRESHOLD],
        "misses": scores["misses"][THRESHOLD],
        "false_alarms": scores["false_alarms"][THRESHOLD],
        "mean_csi": float(np.mean(defined)) if defined else None,
        "defined_leads": len(defined),
        "mean_rain_mse": float(np.mean([v or 0.0 for v in scores["rain_mse"]])),
    }


def mean_over(values: Sequence[float | None], leads: Sequence[int]) -> float | None:
    picked = [values[k] or 0.0 for k in leads]
    return float(np.mean(picked)) if picked else None


def compare(raw: dict[str, Any], calibrated: dict[str, Any]) -> dict[str, Any]:
    """Raw vs calibrated over the leads whose observations hold an event (0-based indices)."""
    observed = [k for k, (h, m) in enumerate(zip(raw["hits"], raw["misses"], strict=True)) if h + m]
    raw_mean, cal_mean = mean_over(raw["csi"], observed), mean_over(calibrated["csi"], observed)
    higher_csi = raw_mean is not None and cal_mean is not None and cal_mean > raw_mean
    return {
        "leads_with_observed_events": [k + 1 for k in observed],
        "observed_event_cells": int(sum(raw["hits"]) + sum(raw["misses"])),
        "mean_csi_raw": raw_mean,
        "mean_csi_calibrated": cal_mean,
        "mean_rain_mse_raw": raw["mean_rain_mse"],
        "mean_rain_mse_calibrated": calibrated["mean_rain_mse"],
        "helps": higher_csi and calibrated["mean_rain_mse"] <= raw["mean_rain_mse"],
    }


def block_cross_validation(
    refs: Sequence[WindowRef],
    forecast: np.ndarray,
    truth: np.ndarray,
    block_frames: int,
    norm: NormParams,
    folds: int = 5,
    n_quantiles: int = 201,
) -> dict[str, Any]:
    """Raw vs calibrated over the training blocks, each fold's tables fitted on the others."""
    blocks = sorted({(w.event_index, w.start // block_frames) for w in refs})
    fold_of = {b: i % folds for i, b in enumerate(blocks)}
    fold = np.array([fold_of[(w.event_index, w.start // block_frames)] for w in refs])
    calibrated = np.empty_like(forecast)
    for k in range(folds):
        held = fold == k
        if held.any() and (~held).any():
            tables = fit_calibration(forecast[~held], truth[~held], n_quantiles)
            calibrated[held] = apply_calibration(forecast[held], tables)
    raw_scores = csi_summary(forecast, truth, norm)
    cal_scores = csi_summary(calibrated, truth, norm)
    return {
        "folds": folds,
        "blocks": len(blocks),
        "windows": len(refs),
        "raw": raw_scores,
        "calibrated": cal_scores,
        **compare(raw_scores, cal_scores),
    }


DECISION_RULE = (
    "use the tables if the mean CSI at 0.5 mm/h over the leads with observed events is higher "
    "calibrated than raw and the mean rain MSE is not higher, judged on the validation split "
    "when it holds observed events at every lead, otherwise on the cross-validation over the "
    "training blocks"
)


def fit_and_judge(
    train: tuple[Sequence[WindowRef], np.ndarray, np.ndarray],
    validation: tuple[Sequence[WindowRef], np.ndarray, np.ndarray],
    block_frames: int,
    norm: NormParams,
    n_quantiles: int = 201,
    folds: int = 5,
) -> tuple[LeadCalibration, dict[str, Any]]:
    """Tables fitted on ``train`` and the record of how they did (see the module docstring).

    ``train`` and ``validation``: `collect_forecasts` results of the raw network.
    Returns the tables and a JSON-safe report whose ``use`` says whether to apply them.
    """
    train_refs, train_forecast, train_truth = train
    _, val_forecast, val_truth = validation
    tables = fit_calibration(train_forecast, train_truth, n_quantiles)
    raw = csi_summary(val_forecast, val_truth, norm)
    calibrated = csi_summary(apply_calibration(val_forecast, tables), val_truth, norm)
    judged = compare(raw, calibrated)
    cross = block_cross_validation(
        train_refs, train_forecast, train_truth, block_frames, norm, folds, n_quantiles
    )
    every_lead = len(judged["leads_with_observed_events"]) == val_forecast.shape[1]
    judged_on = "validation" if every_lead else "train_block_cross_validation"
    return tables, {
        "fitted_on": f"train split: {len(train_refs)} windows, {train_forecast.shape[1]} leads",
        "n_quantiles": n_quantiles,
        "validation": {
            "windows": len(val_forecast),
            "raw": raw,
            "calibrated": calibrated,
            **judged,
        },
        "train_block_cross_validation": cross,
        "decision_rule": DECISION_RULE,
        "judged_on": judged_on,
        "use": (judged if every_lead else cross)["helps"],
    }
