"""Reliability calibration of probabilities of exceedance: per lead and threshold, a monotone
map from a method's forecast probability to the frequency observed with it.

Fitted on the training blocks from the reliability counts of ``nowcast evaluate --split
train`` (`fit_calibration`): in each bin the mean forecast probability and the observed
frequency, made non-decreasing by isotonic regression weighted by the bin's cases
(scikit-learn). Applied by linear interpolation between the bins' means, flat beyond the
first and last (`ProbabilityCalibration.apply`), so it never reorders two forecasts of one
lead and threshold. Operational post-processing calibrates the same way (the Met
Office's IMPROVER: reliability tables).

A calibration may hold a second set of tables for wet issue times (``wet_points``): the
frequency with which rain appears where a method forecasts none differs by an order of
magnitude between windows whose last input is nearly dry and windows with widespread rain
(docs/evaluation/probability-regimes.md). Each forecast then takes the tables of its regime,
chosen by `issue_time_wet_fraction` of its own inputs (`regime_of`).

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

WET_REGIME_MMH = 0.5
"""Rain rate (mm/h) a cell of the last input must reach to count as wet for the regime."""

WET_REGIME_FRACTION = 0.05
"""Share of the last input's covered cells at or above `WET_REGIME_MMH` from which an issue
time is "wet" (below: "dry")."""

REGIMES = ("dry", "wet")

Tables = list[dict[str, tuple[list[float], list[float]]]]
"""Per lead (0-based), threshold key -> (forecast probabilities, calibrated probabilities)."""


def issue_time_wet_fraction(
    inputs_grey: NDArray[np.floating], dbz_bounds: tuple[float, float], zr: tuple[float, float]
) -> NDArray[np.float64]:
    """(B, in_frames, H, W) grey inputs -> (B,) share of the last frame's covered cells (NaN:
    outside coverage, left out) at or above `WET_REGIME_MMH`; 0 where no cell is covered."""
    from core.conversion import grey_to_rain_rate_mmh

    last = np.asarray(inputs_grey, dtype=np.float32)[:, -1]
    covered = np.isfinite(last)
    rain = grey_to_rain_rate_mmh(np.nan_to_num(last, nan=0.0), *dbz_bounds, *zr)
    wet = (rain >= WET_REGIME_MMH) & covered
    n_covered = covered.reshape(len(last), -1).sum(axis=1)
    return np.where(
        n_covered > 0, wet.reshape(len(last), -1).sum(axis=1) / np.maximum(n_covered, 1), 0.0
    )


def regime_of(wet_fraction: NDArray[np.floating]) -> list[str]:
    """The regime ("dry" or "wet") of each forecast from its issue-time wet fraction."""
    return ["wet" if f >= WET_REGIME_FRACTION else "dry" for f in np.asarray(wet_fraction)]


@dataclass(frozen=True)
class ProbabilityCalibration:
    """``points[lead][threshold key]`` = (forecast probabilities, calibrated probabilities),
    both non-decreasing, for 1-based leads ``1..n_leads``; with ``wet_points`` (the same for
    wet issue times, `regime_of`) ``points`` are the dry issue times' tables."""

    method: str
    points: Tables
    fitted_on: str
    wet_points: Tables | None = None

    @property
    def by_regime(self) -> bool:
        """Whether the tables depend on the issue time's regime (`apply` then needs it)."""
        return self.wet_points is not None

    def apply(
        self,
        probability: NDArray[np.floating],
        thresholds_mmh: tuple[float, ...],
        wet_fraction: NDArray[np.floating] | None = None,
    ) -> NDArray[np.float32]:
        """(B, n_leads, n_thresholds, H, W) probabilities -> calibrated, same shape; a
        threshold without a table is left as it is. ``thresholds_mmh`` ascending: a higher
        threshold is then never more likely than a lower one at a cell (the tables are fitted
        apart, so the calibrated values are capped by the lower threshold's).
        ``wet_fraction``: (B,) `issue_time_wet_fraction` of each forecast's inputs, needed
        (ValueError without it) when the calibration is `by_regime`."""
        p = np.asarray(probability, dtype=np.float32)
        if not self.by_regime:
            return _apply_tables(p, thresholds_mmh, self.points)
        if wet_fraction is None or len(wet_fraction) != len(p):
            raise ValueError(
                f"{self.method}: the calibration depends on the issue time's regime: give "
                f"each of the {len(p)} forecasts its inputs' wet fraction"
            )
        out = np.empty_like(p)
        for b, regime in enumerate(regime_of(wet_fraction)):
            tables = self.wet_points if regime == "wet" else self.points
            assert tables is not None  # by_regime
            out[b] = _apply_tables(p[b], thresholds_mmh, tables)
        return out

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "method": self.method,
            "fitted_on": self.fitted_on,
            "points": self.points,
        }
        if self.wet_points is not None:
            data["wet_points"] = self.wet_points
            data["wet_from_fraction"] = WET_REGIME_FRACTION
            data["wet_mmh"] = WET_REGIME_MMH
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> ProbabilityCalibration:
        data = json.loads(text)
        if "wet_points" in data and (
            data.get("wet_from_fraction") != WET_REGIME_FRACTION
            or data.get("wet_mmh") != WET_REGIME_MMH
        ):
            raise ValueError(
                f"{data['method']}: calibration regimes drawn at another wet fraction or rain "
                "rate than this code's"
            )
        wet = data.get("wet_points")
        return cls(
            str(data["method"]),
            _tables(data["points"], data["method"]),
            str(data["fitted_on"]),
            None if wet is None else _tables(wet, data["method"]),
        )


def _tables(raw: list[dict[str, Any]], method: str) -> Tables:
    """Tables read from JSON; ValueError unless each rises."""
    points = [
        {key: (list(map(float, xy[0])), list(map(float, xy[1]))) for key, xy in lead.items()}
        for lead in raw
    ]
    for lead in points:
        for x, y in lead.values():
            if len(x) != len(y) or len(x) < 2 or np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0):
                raise ValueError(f"{method}: a calibration table must rise")
    return points


def _apply_tables(
    p: NDArray[np.float32], thresholds_mmh: tuple[float, ...], points: Tables
) -> NDArray[np.float32]:
    """(..., n_leads, n_thresholds, H, W) probabilities through ``points`` (see `apply`)."""
    out = p.copy()
    for k in range(min(p.shape[-4], len(points))):
        for j, threshold in enumerate(thresholds_mmh):
            table = points[k].get(threshold_key(threshold))
            if table is None:
                continue
            x, y = table
            out[..., k, j, :, :] = np.interp(p[..., k, j, :, :], x, y)
    return np.minimum.accumulate(np.clip(out, 0.0, 1.0), axis=-3)


def fit_calibration(
    report: dict[str, Any], fitted_on: str, by_regime: bool = False
) -> ProbabilityCalibration:
    """The calibration of a ``nowcast evaluate`` report's method from its reliability bins
    (``report["probabilistic"]["reliability"]``); bins with fewer than `MIN_BIN_CASES` cases
    are left out. ``by_regime``: one set of tables per issue-time regime, from
    ``reliability_by_regime``; a lead and threshold too thin in a regime takes the pooled
    table."""
    probabilistic = report["probabilistic"]
    pooled = _fit_tables(probabilistic["reliability"])
    if not by_regime:
        return ProbabilityCalibration(str(report["method"]), pooled, fitted_on)
    if "reliability_by_regime" not in probabilistic:
        raise ValueError("the report has no reliability per regime: evaluate it again")
    dry, wet = (
        _with_fallback(_fit_tables(probabilistic["reliability_by_regime"][r]), pooled)
        for r in REGIMES
    )
    return ProbabilityCalibration(str(report["method"]), dry, fitted_on, wet)


def _with_fallback(tables: Tables, pooled: Tables) -> Tables:
    return [{**pooled_lead, **lead} for lead, pooled_lead in zip(tables, pooled, strict=True)]


def _fit_tables(reliability: dict[str, list[dict[str, Any]]]) -> Tables:
    """Isotonic tables per lead and threshold from reliability bins (see `fit_calibration`)."""
    from sklearn.isotonic import IsotonicRegression

    n_leads = len(next(iter(reliability.values())))
    points: Tables = [{} for _ in range(n_leads)]
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
    return points


def load_calibration(method: str, folder: Path = CALIBRATION_DIR) -> ProbabilityCalibration | None:
    """The shipped calibration of ``method``, or None when it has none."""
    path = folder / f"{method}.json"
    return ProbabilityCalibration.from_json(path.read_text()) if path.is_file() else None
