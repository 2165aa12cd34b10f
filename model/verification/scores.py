"""Verification scores: pooled contingency tables and continuous sums per lead time.

The one implementation used by offline evaluation and live verification (METHOD.md,
"Verification"). Pure numpy, no I/O.

Conventions
-----------
- An EVENT is a rain rate >= threshold (mm/h), as in the HKO-7 benchmark and rainymotion.
  pysteps' ``det_cat_fct`` counts rain rate > threshold instead; the two agree unless a value
  equals a threshold exactly.
- Contingency tables and sums are POOLED over all forecasts per lead time, then scores are
  computed from the pooled counts (averaging per-forecast scores is biased).
- NaN in the observation marks a cell that was not observed: it is excluded from every count
  and sum. NaN in the forecast at an observed cell is an error.
- A score whose denominator is zero is undefined: NaN from the score functions, None in
  `ScoreAccumulator.scores` (never 0).

Scores (H hits, M misses, F false alarms):
    CSI = H / (H + M + F), FAR = F / (H + F), POD = H / (H + M)
    rain MSE (mm/h)^2 = sum((P - T)^2) / n_cells
    correlation = sum(P T) / sqrt(sum(P^2) sum(T^2) + 1e-9)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.conversion import grey_to_rain_rate_mmh
from ingest.normalize import NormParams

THRESHOLDS_MMH: tuple[float, ...] = (0.5, 2.0, 5.0, 10.0, 30.0)
CORRELATION_EPSILON = 1e-9

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
ScoreFunction = Callable[[ArrayLike, ArrayLike, ArrayLike], FloatArray]

_COUNT_NAMES = ("hits", "misses", "false_alarms", "correct_negatives")
_SUM_NAMES = ("sum_squared_error_mmh2", "sum_pt", "sum_pp", "sum_tt")


def threshold_key(threshold_mmh: float) -> str:
    """The key of a threshold in score dictionaries: 0.5 -> "0.5", 2 -> "2.0"."""
    return str(float(threshold_mmh))


def _ratio(numerator: ArrayLike, denominator: ArrayLike) -> FloatArray:
    """numerator / denominator elementwise, NaN where denominator == 0."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast_shapes(num.shape, den.shape), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def critical_success_index(
    hits: ArrayLike, misses: ArrayLike, false_alarms: ArrayLike
) -> FloatArray:
    """CSI = H / (H + M + F); NaN where H + M + F == 0. Counts of any (common) shape."""
    h = np.asarray(hits)
    return _ratio(h, h + np.asarray(misses) + np.asarray(false_alarms))


def false_alarm_ratio(hits: ArrayLike, misses: ArrayLike, false_alarms: ArrayLike) -> FloatArray:
    """FAR = F / (H + F); NaN where H + F == 0 (no event forecast). ``misses`` is unused."""
    f = np.asarray(false_alarms)
    return _ratio(f, np.asarray(hits) + f)


def probability_of_detection(
    hits: ArrayLike, misses: ArrayLike, false_alarms: ArrayLike
) -> FloatArray:
    """POD = H / (H + M); NaN where H + M == 0 (no event observed). ``false_alarms`` unused."""
    h = np.asarray(hits)
    return _ratio(h, h + np.asarray(misses))


_SCORES: dict[str, ScoreFunction] = {
    "csi": critical_success_index,
    "far": false_alarm_ratio,
    "pod": probability_of_detection,
}


def score_names() -> tuple[str, ...]:
    """Names accepted by `get_score`."""
    return tuple(_SCORES)


def get_score(name: str) -> ScoreFunction:
    """Score function ``f(hits, misses, false_alarms) -> float64 array`` (NaN: undefined)."""
    try:
        return _SCORES[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown score {name!r}; valid names: {', '.join(sorted(_SCORES))}"
        ) from None


def nan_to_none(values: ArrayLike) -> list[float | None]:
    """1-D values as a JSON-safe list of floats, NaN (undefined) -> None."""
    return [None if np.isnan(v) else float(v) for v in np.asarray(values, dtype=np.float64)]


def _as_batch(array: ArrayLike, n_leads: int, what: str) -> NDArray[np.floating]:
    values = np.asarray(array)
    if values.ndim == 3:
        values = values[np.newaxis]
    if values.ndim != 4 or values.shape[1] != n_leads:
        raise ValueError(
            f"{what} must be (n_leads, H, W) or (B, n_leads, H, W) with n_leads={n_leads}, "
            f"got shape {values.shape}"
        )
    return values


@dataclass(eq=False)
class ScoreAccumulator:
    """Pooled verification counts and sums per lead time (and per threshold).

    ``ScoreAccumulator(n_leads)``; arrays (n_leads, n_thresholds) int64 for the contingency
    table, (n_leads,) for the continuous sums (float64, rain rates in mm/h) and ``n_cells``
    (int64, verified cells). Combine with `merge`, store with `to_dict` / `from_dict`.
    """

    n_leads: int
    thresholds_mmh: tuple[float, ...] = THRESHOLDS_MMH
    hits: IntArray = field(init=False)
    misses: IntArray = field(init=False)
    false_alarms: IntArray = field(init=False)
    correct_negatives: IntArray = field(init=False)
    sum_squared_error_mmh2: FloatArray = field(init=False)
    sum_pt: FloatArray = field(init=False)
    sum_pp: FloatArray = field(init=False)
    sum_tt: FloatArray = field(init=False)
    n_cells: IntArray = field(init=False)

    def __post_init__(self) -> None:
        if int(self.n_leads) < 1:
            raise ValueError(f"n_leads must be >= 1, got {self.n_leads}")
        self.n_leads = int(self.n_leads)
        self.thresholds_mmh = tuple(float(t) for t in self.thresholds_mmh)
        if not self.thresholds_mmh:
            raise ValueError("at least one threshold is needed")
        table = (self.n_leads, len(self.thresholds_mmh))
        self.hits = np.zeros(table, dtype=np.int64)
        self.misses = np.zeros(table, dtype=np.int64)
        self.false_alarms = np.zeros(table, dtype=np.int64)
        self.correct_negatives = np.zeros(table, dtype=np.int64)
        self.sum_squared_error_mmh2 = np.zeros(self.n_leads, dtype=np.float64)
        self.sum_pt = np.zeros(self.n_leads, dtype=np.float64)
        self.sum_pp = np.zeros(self.n_leads, dtype=np.float64)
        self.sum_tt = np.zeros(self.n_leads, dtype=np.float64)
        self.n_cells = np.zeros(self.n_leads, dtype=np.int64)

    def add(self, forecast_mmh: ArrayLike, observed_mmh: ArrayLike) -> None:
        """Add forecasts and observations, (n_leads, H, W) or (B, n_leads, H, W), in mm/h.

        NaN in ``observed_mmh`` marks an unverified cell (excluded everywhere). Raises
        ValueError on a shape mismatch or a NaN forecast at a verified cell.
        """
        forecast = _as_batch(forecast_mmh, self.n_leads, "forecast_mmh")
        observed = _as_batch(observed_mmh, self.n_leads, "observed_mmh")
        if forecast.shape != observed.shape:
            raise ValueError(f"forecast shape {forecast.shape} != observed shape {observed.shape}")
        for lead in range(self.n_leads):  # one lead at a time keeps float64 copies small
            p = forecast[:, lead].astype(np.float64)
            t = observed[:, lead].astype(np.float64)
            valid = np.isfinite(t)
            if np.isnan(p[valid]).any():
                raise ValueError(f"forecast has NaN at verified cells (lead index {lead})")
            for j, threshold in enumerate(self.thresholds_mmh):
                p_event = p >= threshold
                t_event = t >= threshold  # False for NaN
                t_none = t < threshold  # False for NaN
                self.hits[lead, j] += np.count_nonzero(p_event & t_event)
                self.misses[lead, j] += np.count_nonzero(~p_event & t_event)
                self.false_alarms[lead, j] += np.count_nonzero(p_event & t_none)
                self.correct_negatives[lead, j] += np.count_nonzero(~p_event & t_none)
            p = np.where(valid, p, 0.0)
            t = np.where(valid, t, 0.0)
            self.sum_squared_error_mmh2[lead] += np.sum(np.square(p - t))
            self.sum_pt[lead] += np.sum(p * t)
            self.sum_pp[lead] += np.sum(p * p)
            self.sum_tt[lead] += np.sum(t * t)
            self.n_cells[lead] += np.count_nonzero(valid)

    def merge(self, other: ScoreAccumulator) -> None:
        """Add ``other``'s counts and sums to this accumulator (in place)."""
        if other.n_leads != self.n_leads or other.thresholds_mmh != self.thresholds_mmh:
            raise ValueError(
                f"cannot merge: n_leads {other.n_leads} / thresholds {other.thresholds_mmh} "
                f"!= {self.n_leads} / {self.thresholds_mmh}"
            )
        for name in (*_COUNT_NAMES, *_SUM_NAMES, "n_cells"):
            getattr(self, name)[...] += getattr(other, name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (lists of Python ints and floats); inverse of `from_dict`."""
        out: dict[str, Any] = {
            "n_leads": self.n_leads,
            "thresholds_mmh": list(self.thresholds_mmh),
        }
        for name in (*_COUNT_NAMES, *_SUM_NAMES, "n_cells"):
            out[name] = getattr(self, name).tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreAccumulator:
        """Rebuild from `to_dict` output; ValueError on missing keys or wrong shapes."""
        try:
            acc = cls(int(data["n_leads"]), tuple(data["thresholds_mmh"]))
            for name in (*_COUNT_NAMES, "n_cells"):
                _fill(acc, name, np.asarray(data[name], dtype=np.int64))
            for name in _SUM_NAMES:
                _fill(acc, name, np.asarray(data[name], dtype=np.float64))
        except KeyError as err:
            raise ValueError(f"score accumulator dict lacks {err}") from None
        return acc

    def scores(self) -> dict[str, Any]:
        """JSON-safe scores from the pooled counts.

        ``csi``, ``far``, ``pod``: threshold key ("0.5") -> n_leads floats, None where
        undefined. ``rain_mse`` ((mm/h)^2) and ``correlation``: n_leads floats, None for a
        lead with no verified cell. ``hits``, ``misses``, ``false_alarms``,
        ``correct_negatives``: threshold key -> n_leads ints; ``n_cells``: n_leads ints.
        """
        keys = [threshold_key(t) for t in self.thresholds_mmh]
        out: dict[str, Any] = {}
        for name in score_names():
            values = get_score(name)(self.hits, self.misses, self.false_alarms)
            out[name] = {key: nan_to_none(values[:, j]) for j, key in enumerate(keys)}
        out["rain_mse"] = nan_to_none(_ratio(self.sum_squared_error_mmh2, self.n_cells))
        correlation = self.sum_pt / np.sqrt(self.sum_pp * self.sum_tt + CORRELATION_EPSILON)
        out["correlation"] = nan_to_none(np.where(self.n_cells > 0, correlation, np.nan))
        for name in _COUNT_NAMES:
            table = getattr(self, name)
            out[name] = {key: table[:, j].tolist() for j, key in enumerate(keys)}
        out["n_cells"] = self.n_cells.tolist()
        return out


def _fill(acc: ScoreAccumulator, name: str, values: NDArray[Any]) -> None:
    target = getattr(acc, name)
    if values.shape != target.shape:
        raise ValueError(f"{name}: shape {values.shape} != expected {target.shape}")
    target[...] = values


def pooled_scores(
    forecasts_mmh: Sequence[ArrayLike],
    observed_mmh: Sequence[ArrayLike],
    n_leads: int,
    thresholds_mmh: tuple[float, ...] = THRESHOLDS_MMH,
) -> dict[str, Any]:
    """`ScoreAccumulator.scores` of pairs of (n_leads, H, W) or (B, n_leads, H, W) arrays."""
    acc = ScoreAccumulator(n_leads, thresholds_mmh)
    for forecast, observed in zip(forecasts_mmh, observed_mmh, strict=True):
        acc.add(forecast, observed)
    return acc.scores()


def grey_to_mmh(grey: np.ndarray, norm: NormParams) -> np.ndarray:
    """Rain rate (mm/h) of grey levels under the normalisation ``norm``; same shape."""
    return grey_to_rain_rate_mmh(grey, norm.dbz_min, norm.dbz_max, norm.zr_a, norm.zr_b)
