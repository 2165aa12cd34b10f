"""Reliability calibration of probabilities of exceedance: per lead and threshold, a monotone
map from a method's forecast probability to the frequency observed with it.

Fitted on the training blocks from the reliability counts of ``nowcast evaluate --split
train`` (`fit_calibration`): in each bin the mean forecast probability and the observed
frequency, made non-decreasing by isotonic regression weighted by the bin's cases
(scikit-learn). Applied by linear interpolation between the bins' means, flat beyond the
first and last (`ProbabilityCalibration.apply`), so it never reorders two forecasts of one
lead and threshold. Operational post-processing calibrates the same way (the Met
Office's IMPROVER: reliability tables).

A calibration may hold a second set of tables for one issue-time regime (``regime_points``,
`model.verification.issue_regimes`): the frequency with which rain appears where a method
forecasts none differs by an order of magnitude between issue times
(docs/evaluation/probability-regimes.md). Each forecast then takes the tables of its regime,
read from its own inputs (`ProbabilityCalibration.labels_of`).

Shipped per method as ``model/calibration/<method>.json``; a method without one is served
uncalibrated (`load_calibration` returns None).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model.verification.issue_regimes import get_regime
from model.verification.scores import threshold_key

CALIBRATION_DIR = Path(__file__).resolve().parents[1] / "calibration"
MIN_BIN_CASES = 100

Tables = list[dict[str, tuple[list[float], list[float]]]]
"""Per lead (0-based), threshold key -> (forecast probabilities, calibrated probabilities)."""


@dataclass(frozen=True)
class ProbabilityCalibration:
    """``points[lead][threshold key]`` = (forecast probabilities, calibrated probabilities),
    both non-decreasing, for 1-based leads ``1..n_leads``. With ``regime`` (a family of
    `model.verification.issue_regimes`), ``regime_points`` are the tables of its active label
    (e.g. "initiating") and ``points`` those of the other."""

    method: str
    points: Tables
    fitted_on: str
    regime: str | None = None
    regime_points: Tables | None = None

    def __post_init__(self) -> None:
        if (self.regime is None) != (self.regime_points is None):
            raise ValueError(
                f"{self.method}: a calibration by regime needs both its name and tables"
            )
        if self.regime is not None:
            get_regime(self.regime)

    @property
    def version(self) -> str:
        """8 hex digits of the SHA-256 of the tables and their regime: the served forecasts'
        version names it, so a refitted calibration is told apart."""
        import hashlib

        return hashlib.sha256(self.to_json().encode()).hexdigest()[:8]

    @property
    def by_regime(self) -> bool:
        """Whether the tables depend on the issue time's regime (`apply` then needs it)."""
        return self.regime is not None

    def labels_of(
        self,
        inputs_grey: NDArray[np.floating],
        dbz_bounds: tuple[float, float],
        zr: tuple[float, float],
    ) -> list[str] | None:
        """Each forecast's label in this calibration's regime family, from its (B, in_frames,
        H, W) grey inputs; None for a pooled calibration."""
        return (
            None if self.regime is None else get_regime(self.regime).of(inputs_grey, dbz_bounds, zr)
        )

    def apply(
        self,
        probability: NDArray[np.floating],
        thresholds_mmh: tuple[float, ...],
        regime_labels: Sequence[str] | None = None,
    ) -> NDArray[np.float32]:
        """(B, n_leads, n_thresholds, H, W) probabilities -> calibrated, same shape; a
        threshold without a table is left as it is. ``thresholds_mmh`` ascending: a higher
        threshold is then never more likely than a lower one at a cell (the tables are fitted
        apart, so the calibrated values are capped by the lower threshold's).
        ``regime_labels``: (B,) each forecast's label in the calibration's family
        (`labels_of`), needed (ValueError without it) when the calibration is `by_regime`."""
        p = np.asarray(probability, dtype=np.float32)
        if self.regime is None or self.regime_points is None:
            return _apply_tables(p, thresholds_mmh, self.points)
        labels = get_regime(self.regime).labels
        if regime_labels is None or len(regime_labels) != len(p):
            raise ValueError(
                f"{self.method}: the calibration depends on the issue time's {self.regime} "
                f"regime: give each of the {len(p)} forecasts its label"
            )
        out = np.empty_like(p)
        for b, label in enumerate(regime_labels):
            if label not in labels:
                raise ValueError(f"{self.method}: {label!r} is not a {self.regime} regime {labels}")
            tables = self.regime_points if label == labels[1] else self.points
            out[b] = _apply_tables(p[b], thresholds_mmh, tables)
        return out

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "method": self.method,
            "fitted_on": self.fitted_on,
            "points": self.points,
        }
        if self.regime is not None:
            family = get_regime(self.regime)
            data["regime"] = self.regime
            data["regime_labels"] = list(family.labels)
            data["regime_parameters"] = family.parameters
            data["regime_points"] = self.regime_points
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> ProbabilityCalibration:
        data = json.loads(text)
        method = str(data["method"])
        regime = data.get("regime")
        if regime is not None:
            get_regime(regime).check_parameters(data.get("regime_parameters", {}), method)
        by_regime = data.get("regime_points")
        return cls(
            method,
            _tables(data["points"], method),
            str(data["fitted_on"]),
            regime,
            None if by_regime is None else _tables(by_regime, method),
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
    report: dict[str, Any], fitted_on: str, regime: str | None = None
) -> ProbabilityCalibration:
    """The calibration of a ``nowcast evaluate`` report's method from its reliability bins
    (``report["probabilistic"]["reliability"]``); bins with fewer than `MIN_BIN_CASES` cases
    are left out. ``regime``: one set of tables per label of that issue-time family, from
    ``reliability_by_regime``; a lead and threshold too thin in a regime takes the pooled
    table."""
    probabilistic = report["probabilistic"]
    pooled = _fit_tables(probabilistic["reliability"])
    if regime is None:
        return ProbabilityCalibration(str(report["method"]), pooled, fitted_on)
    family = get_regime(regime)
    by_label = probabilistic.get("reliability_by_regime", {}).get(regime)
    if by_label is None:
        raise ValueError(f"the report has no reliability per {regime} regime: evaluate it again")
    inactive, active = (
        _with_fallback(_fit_tables(by_label[label]), pooled) if label in by_label else pooled
        for label in family.labels
    )
    return ProbabilityCalibration(str(report["method"]), inactive, fitted_on, regime, active)


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
