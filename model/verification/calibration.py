"""Per-lead probability matching: a monotone map of forecast grey levels onto observed ones.

A network trained with a pixel loss forecasts the conditional mean: blurred, and weaker than
any observed field (METHOD.md, "Known failure mode"). Probability matching (quantile mapping),
standard in radar nowcasting, keeps the forecast's ranks and replaces its values: for lead
``k``, a forecast grey level at quantile ``p`` of the lead-``k`` forecasts becomes the
quantile ``p`` of the lead-``k`` observations. The table of quantile pairs is fitted once, on
the training windows only, and stored with the checkpoint (plain float lists in its JSON
meta); applying it is a piecewise-linear interpolation per lead.

Pure numpy, no I/O. Grey levels are the ingest normaliser's: float in [0, 1], grey 0 = no echo
(see `ingest.normalize`); the map is non-decreasing, so event thresholds in mm/h keep their
order, and it fixes 0 -> 0 and 1 -> 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

DEFAULT_QUANTILES = 201
TAIL_POWER = 3.0  # levels 1 - (1 - u)^3: about 80 of 201 levels lie in the wettest 7 %
DECIMALS = 6  # grey levels are stored to 1e-6, far below any radar product's resolution
KIND = "per-lead quantile mapping (probability matching) of grey levels"


def quantile_levels(n: int = DEFAULT_QUANTILES, tail_power: float = TAIL_POWER) -> FloatArray:
    """``n`` probabilities from 0 to 1, denser towards 1 where the rain is.

    Returns:
        (n,) float64, increasing, ``1 - (1 - u) ** tail_power`` for ``u`` evenly in [0, 1].
    """
    if n < 2:
        raise ValueError(f"need at least 2 quantile levels, got {n}")
    if tail_power < 1.0:
        raise ValueError(f"tail_power must be >= 1, got {tail_power}")
    u = np.linspace(0.0, 1.0, n)
    return 1.0 - (1.0 - u) ** tail_power


def fit_quantile_pairs(
    forecast_grey: ArrayLike, observed_grey: ArrayLike, levels: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """One lead's mapping table from samples of forecast and observed grey levels.

    Args:
        forecast_grey: forecast grey levels in [0, 1], any shape (all windows and cells of
            one lead); NaN is ignored.
        observed_grey: observed grey levels in [0, 1] at the same lead, any shape (the sample
            sizes may differ); NaN is ignored.
        levels: (Q,) increasing probabilities in [0, 1] at which both are sampled.

    Returns:
        ``(forecast_q, observed_q)``, each (<= Q + 2,) float64 in [0, 1]: the quantiles of
        each sample at ``levels`` plus the anchors (0, 0) and (1, 1), rounded to
        `DECIMALS`; ``forecast_q`` strictly increasing (observed quantiles of tied forecast
        quantiles are averaged), ``observed_q`` non-decreasing.

    Raises:
        ValueError: an empty sample, values outside [0, 1], or levels not increasing in [0, 1].
    """
    p = np.asarray(levels, dtype=np.float64)
    if p.ndim != 1 or p.size < 2 or np.any(np.diff(p) <= 0) or p[0] < 0 or p[-1] > 1:
        raise ValueError("levels must be (Q >= 2,) increasing probabilities in [0, 1]")
    samples = []
    for name, values in (("forecast_grey", forecast_grey), ("observed_grey", observed_grey)):
        flat = np.asarray(values, dtype=np.float64).ravel()
        flat = flat[~np.isnan(flat)]
        if flat.size == 0:
            raise ValueError(f"{name} holds no value")
        if flat.min() < 0.0 or flat.max() > 1.0:
            raise ValueError(f"{name} must be grey levels in [0, 1]")
        samples.append(np.quantile(flat, p))
    forecast_q = np.round(np.concatenate([[0.0], samples[0], [1.0]]), DECIMALS)
    observed_q = np.round(np.concatenate([[0.0], samples[1], [1.0]]), DECIMALS)
    unique, group = np.unique(forecast_q, return_inverse=True)
    means = np.bincount(group, weights=observed_q) / np.bincount(group)
    return unique, np.maximum.accumulate(np.round(means, DECIMALS))


def apply_quantile_pairs(
    grey: ArrayLike, forecast_q: ArrayLike, observed_q: ArrayLike
) -> NDArray[np.float32]:
    """Map grey levels through one lead's table (piecewise linear between the pairs).

    Args:
        grey: forecast grey levels in [0, 1], any shape.
        forecast_q, observed_q: a table from `fit_quantile_pairs`.

    Returns:
        float32 array of ``grey``'s shape, grey levels in [0, 1].
    """
    values = np.asarray(grey, dtype=np.float64)
    x = np.asarray(forecast_q, dtype=np.float64)
    y = np.asarray(observed_q, dtype=np.float64)
    return np.interp(values, x, y).astype(np.float32)


@dataclass(frozen=True)
class LeadCalibration:
    """Quantile-pair tables for leads 1..L; JSON-ready through `to_dict` / `from_dict`.

    ``forecast_grey[k]`` / ``observed_grey[k]``: lead ``k + 1``'s table (see
    `fit_quantile_pairs`); ``levels``: the probabilities they were sampled at.
    """

    levels: tuple[float, ...]
    forecast_grey: tuple[tuple[float, ...], ...]
    observed_grey: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if not self.forecast_grey or len(self.forecast_grey) != len(self.observed_grey):
            raise ValueError("need one forecast and one observed table per lead")
        for k, (xs, ys) in enumerate(zip(self.forecast_grey, self.observed_grey, strict=True)):
            x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
            if x.shape != y.shape or x.ndim != 1 or x.size < 2:
                raise ValueError(f"lead {k + 1}: tables of unequal or too short lengths")
            if np.any(np.diff(x) <= 0) or np.any(np.diff(y) < 0):
                raise ValueError(f"lead {k + 1}: the mapping is not monotone")
            if x[0] < 0 or x[-1] > 1 or y[0] < 0 or y[-1] > 1:
                raise ValueError(f"lead {k + 1}: grey levels outside [0, 1]")

    @property
    def leads(self) -> int:
        return len(self.forecast_grey)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "levels": list(self.levels),
            "forecast_grey": [list(t) for t in self.forecast_grey],
            "observed_grey": [list(t) for t in self.observed_grey],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LeadCalibration:
        """Rebuild from `to_dict`'s output (extra keys are ignored); ValueError if invalid."""
        try:
            return cls(
                tuple(float(v) for v in data["levels"]),
                tuple(tuple(float(v) for v in t) for t in data["forecast_grey"]),
                tuple(tuple(float(v) for v in t) for t in data["observed_grey"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a calibration table: {error}") from error


def fit_calibration(
    forecast_grey: ArrayLike, observed_grey: ArrayLike, n_quantiles: int = DEFAULT_QUANTILES
) -> LeadCalibration:
    """Fit one table per lead.

    Args:
        forecast_grey: (N, L, H, W) forecast grey levels in [0, 1] of N windows, L leads.
        observed_grey: (M, L, H, W) observed grey levels at the same L leads (M may differ
            from N; normally the same windows' truth).
        n_quantiles: quantile levels per lead (`quantile_levels`).

    Returns:
        The `LeadCalibration` for leads 1..L.
    """
    forecast = np.asarray(forecast_grey)
    observed = np.asarray(observed_grey)
    if forecast.ndim != 4 or observed.ndim != 4 or forecast.shape[1] != observed.shape[1]:
        raise ValueError(
            f"need (N, L, H, W) arrays with the same L, got {forecast.shape} and {observed.shape}"
        )
    levels = quantile_levels(n_quantiles)
    tables = [
        fit_quantile_pairs(forecast[:, k], observed[:, k], levels) for k in range(forecast.shape[1])
    ]
    return LeadCalibration(
        tuple(round(float(v), 9) for v in levels),
        tuple(tuple(float(v) for v in x) for x, _ in tables),
        tuple(tuple(float(v) for v in y) for _, y in tables),
    )


def apply_calibration(grey: ArrayLike, calibration: LeadCalibration) -> NDArray[np.float32]:
    """Calibrated forecasts: each lead through its own table.

    Args:
        grey: (B, L', H, W) forecast grey levels in [0, 1], lead 1 first, L' <= the
            calibration's leads.

    Returns:
        (B, L', H, W) float32 grey levels in [0, 1].
    """
    values = np.asarray(grey)
    if values.ndim != 4 or values.shape[1] > calibration.leads:
        raise ValueError(
            f"need (B, L <= {calibration.leads}, H, W) forecasts, got shape {values.shape}"
        )
    out = np.empty(values.shape, dtype=np.float32)
    for k in range(values.shape[1]):
        out[:, k] = apply_quantile_pairs(
            values[:, k], calibration.forecast_grey[k], calibration.observed_grey[k]
        )
    return out


def cap_at_inputs(grey: ArrayLike, inputs_grey: ArrayLike) -> NDArray[np.float32]:
    """Calibrated forecasts no brighter than the brightest cell of their own input frames.

    The tables map the network's grey onto the training split's observed distribution; where a
    forecast's rain is lighter than that (a stratiform event after convective training), the
    upper tail would turn blurred light rain into heavy rain at the long leads. A nowcast
    advects and decays rain; it has no skill at growing it, so no cell may exceed the input
    maximum.

    Args:
        grey: (B, L, H, W) calibrated forecast grey levels.
        inputs_grey: (B, T, H, W) the input frames the forecasts were made from.

    Returns:
        (B, L, H, W) float32, ``min(grey, max over the inputs of the same forecast)``.
    """
    forecast, inputs = np.asarray(grey, np.float32), np.asarray(inputs_grey, np.float32)
    if forecast.ndim != 4 or inputs.ndim != 4 or forecast.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"need (B, L, H, W) forecasts and (B, T, H, W) inputs, got {forecast.shape} and "
            f"{inputs.shape}"
        )
    ceiling = np.nanmax(inputs, axis=(1, 2, 3), keepdims=True)
    return np.minimum(forecast, np.nan_to_num(ceiling, nan=0.0))
