"""Reliability calibration of probabilities of exceedance: per lead and threshold, a monotone
map from a method's forecast probability to the frequency observed with it.

Fitted on the training blocks from the reliability counts of ``nowcast evaluate --split
train`` (`fit_calibration`): in each bin the mean forecast probability and the observed
frequency, made non-decreasing by isotonic regression weighted by the bin's cases
(scikit-learn). Applied by linear interpolation between the bins' means, flat beyond the
first and last (`ProbabilityCalibration.apply`), so it never reorders two forecasts of one
lead and threshold. Operational post-processing calibrates the same way (the Met
Office's IMPROVER: reliability tables).

Shipped per method as ``model/calibration/<method>.json``; a method without one is served
uncalibrated (`load_calibration` returns None).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model.verification.scores import threshold_key

CALIBRATION_DIR = Path(__file__).resolve().parents[1] / "calibration"
MIN_BIN_CASES = 100


@dataclass(frozen=True)
class ProbabilityCalibration:
    """``points[lead][threshold key]`` = (forecast probabilities, calibrated probabilities),
    both non-decreasing, for 1-based leads ``1..n_leads``."""

    method: str
    points: list[dict[str, tuple[list[float], list[float]]]]
    fitted_on: str

    def apply(
        self, probability: NDArray[np.floating], thresholds_mmh: tuple[float, ...]
    ) -> NDArray[np.float32]:
        """(..., n_leads, n_thresholds, H, W) probabilities -> calibrated, same shape; a
        threshold without a table is left as it is. ``thresholds_mmh`` ascending: a higher
        threshold is then never more likely than a lower one at a cell (the tables are fitted
        apart, so the calibrated values are capped by the lower threshold's)."""
        p = np.asarray(probability, dtype=np.float32)
        out = p.copy()
        for k in range(min(p.shape[-4], len(self.points))):
            for j, threshold in enumerate(thresholds_mmh):
                table = self.points[k].get(threshold_key(threshold))
                if table is None:
                    continue
                x, y = table
                out[..., k, j, :, :] = np.interp(p[..., k, j, :, :], x, y)
        return np.minimum.accumulate(np.clip(out, 0.0, 1.0), axis=-3)

    def to_json(self) -> str:
        return json.dumps(
            {"method": self.method, "fitted_on": self.fitted_on, "points": self.points}, indent=1
        )

    @classmethod
    def from_json(cls, text: str) -> ProbabilityCalibration:
        data = json.loads(text)
        points = [
            {key: (list(map(float, xy[0])), list(map(float, xy[1]))) for key, xy in lead.items()}
            for lead in data["points"]
        ]
        for lead in points:
            for x, y in lead.values():
                if (
                    len(x) != len(y)
                    or len(x) < 2
                    or np.any(np.diff(x) < 0)
                    or np.any(np.diff(y) < 0)
                ):
                    raise ValueError(f"{data['method']}: a calibration table must rise")
        return cls(str(data["method"]), points, str(data["fitted_on"]))


def fit_calibration(report: dict[str, Any], fitted_on: str) -> ProbabilityCalibration:
    """The calibration of a ``nowcast evaluate`` report's method from its reliability bins
    (``report["probabilistic"]["reliability"]``); bins with fewer than `MIN_BIN_CASES` cases
    are left out."""
    from sklearn.isotonic import IsotonicRegression

    reliability = report["probabilistic"]["reliability"]
    n_leads = len(next(iter(reliability.values())))
    points: list[dict[str, tuple[list[float], list[float]]]] = [{} for _ in range(n_leads)]
    for key, leads in reliability.items():
        for k, bins in enumerate(leads):
            rows = [
                (p, o, n)
                for p, o, n in zip(
                    bins["forecast_probability"],
                    bins["observed_frequency"],
                    bins["count"],
                    strict=True,
                )
                if p is not None and o is not None and n >= MIN_BIN_CASES
            ]
            if len(rows) < 2:
                continue
            x, y, w = (np.asarray(v, dtype=np.float64) for v in zip(*rows, strict=True))
            fitted = IsotonicRegression(y_min=0.0, y_max=1.0).fit(x, y, sample_weight=w)
            points[k][key] = (x.tolist(), fitted.predict(x).tolist())
    return ProbabilityCalibration(str(report["method"]), points, fitted_on)


def load_calibration(method: str, folder: Path = CALIBRATION_DIR) -> ProbabilityCalibration | None:
    """The shipped calibration of ``method``, or None when it has none."""
    path = folder / f"{method}.json"
    return ProbabilityCalibration.from_json(path.read_text()) if path.is_file() else None
