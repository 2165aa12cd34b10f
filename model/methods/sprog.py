"""S-PROG nowcast (Seed 2003): pysteps' cascade decomposition with an AR(p) model per level.

What a weather service that runs pysteps serves. The field is split by an FFT band-pass cascade
into spatial scales; each level evolves as its own AR(p) process (AR(2) by default, from the
lag-1 and lag-2 correlations of the last three frames taken to Lagrangian coordinates), so small
scales, which decorrelate fast, fade sooner than large ones; the recomposed field keeps the last
frame's wet-area ratio and (``probmatching="cdf"``) its distribution of values, and is advected
by the motion field. That field is THE one of `model.advection.motion.motion_field` (the same as
`extrapolation` and the Lagrangian `convlstm`), so the methods differ only in what they do to
the rain, never in how they move it.

Grey levels are linear in dBZ (grey = (dBZ + 10) / 80 with the paper's bounds), i.e. already
the logarithmic field S-PROG expects; grey 0 is "no echo". Rain is grey >= `RAIN_THRESHOLD_GREY`,
the grey level of 0.1 mm/h (Marshall-Palmer, -10..70 dBZ: 7.0 dBZ), the threshold pysteps'
examples use and the bottom of the dashboard's colour scale. Echo below it still enters the
cascade, but S-PROG's output is the inputs' minimum (grey 0 where any cell had no echo)
outside the forecast's rain area.

Where S-PROG has nothing to model the method falls back to `model.advection.motion.advect_grey` of
the last frame (extrapolation): no rain in the last frame (no echo at all gives zeros), a flat
frame among the AR inputs (no correlation to estimate), a pysteps error, or a result with no
finite value (cells advected in from outside the grid are NaN there and become 0). With zero
motion S-PROG runs as usual: the cascade evolves in place.

S-PROG has no random component (that is STEPS), so a nowcast is deterministic: the same inputs
give the same output; there is no seed. pysteps is imported on first use and its console
output (it prints its configuration and AR parameters on every call, with no switch to stop
it) is swallowed by redirecting stdout, which is process-wide for the length of the call.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model.advection.motion import DEFAULT_VARIANT, advect_grey, forecast_each_site, variant_weights
from model.methods import check_inputs

log = logging.getLogger(__name__)

RAIN_THRESHOLD_GREY = (10.0 * math.log10(200.0 * 0.1**1.6) + 10.0) / 80.0
"""Grey level of 0.1 mm/h (Z = 200 R^1.6, grey = (dBZ + 10) / 80): about 0.213 (7.0 dBZ)."""

PROBMATCHING_METHODS = ("cdf", "mean", None)


def sprog_forecast() -> Callable[..., Any]:
    """pysteps' S-PROG (``nowcasts.get_method("sprog")``), imported quietly."""
    quiet = "pysteps" not in sys.modules
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        from pysteps import nowcasts
    forecast: Callable[..., Any] = nowcasts.get_method("sprog")
    return forecast


def octave_levels(height: int, width: int) -> int:
    """Cascade levels at about one octave each: floor(log2(min(H, W) / 2)), at least 1.

    pysteps spaces the central wavenumbers of its Gaussian filters by q = (L / 2)^(1 / n);
    n = log2(L / 2) gives q = 2, the octave spacing of its default 8 levels on a 512-cell
    domain. On the 100-cell grid that is 5 levels (scales of about 68, 31, 14, 6.5 and 3
    cells, q = 2.19); its default of 6 would give q = 1.92 with strongly overlapping bands and
    a largest level of barely two Fourier modes. A 32-cell grid gets 4.
    """
    return max(1, math.floor(math.log2(max(min(height, width), 2) / 2.0)))


class SprogMethod:
    """``method(inputs_grey (B, T_in, H, W), n_leads) -> (B, n_leads, H, W)`` float32 grey.

    ``variant``: the motion field's frame pairs ("rover1", default; `model.advection.motion`).
    ``n_cascade_levels``: None (default) for `octave_levels` of the grid, else that many.
    ``ar_order``: order of the AR model per level (2: S-PROG's; needs T_in >= ar_order + 1).
    ``probmatching``: "cdf" (default: the forecast takes the last frame's distribution of
    values over its rain area), "mean" (only the mean of the rain area) or None.
    ``rain_threshold_grey``: the grey level from which a cell is rain (0.1 mm/h by default).
    """

    name: str = "sprog"

    def __init__(
        self,
        variant: str = DEFAULT_VARIANT,
        n_cascade_levels: int | None = None,
        ar_order: int = 2,
        probmatching: str | None = "cdf",
        rain_threshold_grey: float = RAIN_THRESHOLD_GREY,
    ) -> None:
        self.weights = variant_weights(variant)
        self.variant = variant
        if n_cascade_levels is not None and n_cascade_levels < 1:
            raise ValueError(f"n_cascade_levels must be >= 1 or None, got {n_cascade_levels}")
        if ar_order < 1:
            raise ValueError(f"ar_order must be >= 1, got {ar_order}")
        if probmatching not in PROBMATCHING_METHODS:
            raise ValueError(
                f"probmatching must be one of {PROBMATCHING_METHODS}, got {probmatching!r}"
            )
        if not 0.0 < rain_threshold_grey < 1.0:
            raise ValueError(f"rain_threshold_grey must be in (0, 1), got {rain_threshold_grey}")
        self.n_cascade_levels = n_cascade_levels
        self.ar_order = ar_order
        self.probmatching = probmatching
        self.rain_threshold_grey = float(rain_threshold_grey)

    def __call__(self, inputs_grey: np.ndarray, n_leads: int) -> np.ndarray:
        inputs = check_inputs(inputs_grey, n_leads)
        needed = max(len(self.weights), self.ar_order) + 1
        if inputs.shape[1] < needed:
            raise ValueError(
                f"sprog ({self.variant}, AR({self.ar_order})) needs at least {needed} input "
                f"frames, got {inputs.shape[1]}"
            )
        return forecast_each_site(inputs, n_leads, self.variant, self.forecast_one)

    def forecast_one(
        self, frames_grey: NDArray[np.floating], velocity: NDArray[np.float64], n_leads: int
    ) -> NDArray[np.float32]:
        """(n_leads, H, W) grey in [0, 1] from (T, H, W) finite grey frames and their field."""
        last = frames_grey[-1]
        ar_frames = np.asarray(frames_grey[-(self.ar_order + 1) :], dtype=np.float64)
        if not np.any(last >= self.rain_threshold_grey):
            return advect_grey(last, velocity, n_leads)  # nothing to model: zeros for no echo
        if any(np.ptp(frame) == 0.0 for frame in ar_frames):
            log.debug("sprog: a flat input frame (no correlation to estimate); extrapolation")
            return advect_grey(last, velocity, n_leads)
        height, width = last.shape
        levels = self.n_cascade_levels or octave_levels(height, width)
        forecast = sprog_forecast()
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                result = forecast(
                    ar_frames,
                    velocity,
                    n_leads,
                    precip_thr=self.rain_threshold_grey,
                    n_cascade_levels=levels,
                    ar_order=self.ar_order,
                    probmatching_method=self.probmatching,
                )
        except (ValueError, IndexError, np.linalg.LinAlgError) as err:
            log.debug("sprog failed (%s); extrapolation", err)
            return advect_grey(last, velocity, n_leads)
        grey = np.asarray(result, dtype=np.float64)  # NaN: advected in from outside the grid
        if grey.shape != (n_leads, height, width) or not np.isfinite(grey).any():
            log.debug("sprog gave a misshapen or empty forecast; extrapolation")
            return advect_grey(last, velocity, n_leads)
        return np.clip(np.nan_to_num(grey, nan=0.0), 0.0, 1.0).astype(np.float32)
