"""The motion field and the advection every motion-aware method shares.

One Lucas-Kanade field (pysteps' dense LK on grey levels, linear in dBZ) per nowcast, computed
by `motion_field`; `extrapolation`, `sprog` and the Lagrangian `convlstm` all call it, so they
move rain the same way. Advection is pysteps' semi-Lagrangian scheme; `lead_displacements`
exposes its per-lead displacement fields so that a method can move a *different* field at each
lead (`warp_by_displacement`) with exactly the interpolation pysteps uses: a field that does not
change with lead comes out as pysteps' own extrapolation.

Inflow: a trajectory that starts outside the grid brings rain the radar has not seen yet. pysteps
reads it as 0 (``inflow="zero"``, the extrapolation baseline); ``inflow="edge"`` reads the
nearest boundary cell of the field's rain-rate blur (sigma `INFLOW_SIGMA_CELLS`) instead, i.e.
the rain near the upwind edge, smoothed, goes on flowing in: smoothed, because what lies
beyond is unknown and the plain edge cell would draw its texture out into stripes. The
Lagrangian `convlstm` is served with "edge" (issue 15, measured in
docs/evaluation/training-choices.md); its network learns the edge values that flow in.

Variants of the field (the ROVER baselines of METHOD.md):
- "rover1": flow between the last two frames (default);
- "rover2": mean of the flows of the last two frame pairs;
- "rover3": flows of the last three pairs weighted 0.7 / 0.2 / 0.1, most recent 0.7.
A pair with no echo, or where pysteps finds no motion or fails, contributes zero motion.
pysteps is imported on first use only (it prints its configuration path at import).
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
from scipy.ndimage import correlate1d, map_coordinates

log = logging.getLogger(__name__)

# weights of the flows of consecutive frame pairs, most recent pair first
_VARIANT_WEIGHTS: dict[str, tuple[float, ...]] = {
    "rover1": (1.0,),
    "rover2": (0.5, 0.5),
    "rover3": (0.7, 0.2, 0.1),
}

DEFAULT_VARIANT = "rover1"

INFLOWS = ("zero", "edge")
"""What a trajectory from outside the grid reads: 0 (pysteps) or the nearest boundary cell of
the field's rain-rate blur."""

INFLOW_SIGMA_CELLS = 8.0
"""Standard deviation (grid cells) of the rain-rate blur the "edge" inflow reads."""

RAIN_EXPONENT = 5.0
"""R ~ 10 ** (RAIN_EXPONENT * grey): (dBZ_max - dBZ_min) / (10 b) = 80 / 16 (Marshall-Palmer);
the rain-rate blurs here and in `model.advection.rain_blur` average ``10 ** (5 grey)``."""


def rain_blur_grey(field_grey: NDArray[np.floating], sigma_cells: float) -> NDArray[np.float64]:
    """Gaussian blur (radius 3 sigma, edges replicated) of the rain rate of an (H, W) grey
    field, back in grey in [0, 1]: `model.advection.rain_blur.rain_blurs` in numpy."""
    radius = max(1, math.ceil(3 * sigma_cells))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma_cells) ** 2)
    kernel /= kernel.sum()
    rain = np.power(10.0, RAIN_EXPONENT * np.asarray(field_grey, dtype=np.float64))
    blurred = correlate1d(
        correlate1d(rain, kernel, axis=1, mode="nearest"), kernel, axis=0, mode="nearest"
    )
    return np.clip(np.log10(blurred) / RAIN_EXPONENT, 0.0, 1.0)


def check_inflow(inflow: str) -> str:
    """``inflow`` when it is one of `INFLOWS`; ValueError naming them otherwise."""
    if inflow not in INFLOWS:
        raise ValueError(f"unknown inflow {inflow!r}; valid: {', '.join(INFLOWS)}")
    return inflow


def variant_names() -> tuple[str, ...]:
    """Values accepted for ``variant``."""
    return tuple(_VARIANT_WEIGHTS)


def variant_weights(variant: str) -> tuple[float, ...]:
    """The pair weights of ``variant``; ValueError naming the valid ones otherwise."""
    try:
        return _VARIANT_WEIGHTS[variant]
    except KeyError:
        raise ValueError(
            f"unknown motion variant {variant!r}; valid variants: {', '.join(variant_names())}"
        ) from None


def pysteps_methods() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """pysteps' dense Lucas-Kanade and semi-Lagrangian functions, imported quietly."""
    quiet = "pysteps" not in sys.modules
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        from pysteps import extrapolation, motion
    return motion.get_method("LK"), extrapolation.get_method("semilagrangian")


def flow_pixels_per_step(
    prev_grey: NDArray[np.floating], next_grey: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Dense motion (2, H, W) in cells per step (x: columns, y: rows) from two (H, W) frames.

    Zero motion where a frame has no echo (all grey <= 0), where pysteps finds no vectors,
    or where it fails.
    """
    shape = (2, *prev_grey.shape)
    if not (np.nanmax(prev_grey, initial=0.0) > 0.0 and np.nanmax(next_grey, initial=0.0) > 0.0):
        return np.zeros(shape)
    dense_lk, _ = pysteps_methods()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            velocity = np.asarray(
                dense_lk(np.stack([prev_grey, next_grey]).astype(np.float64), verbose=False),
                dtype=np.float64,
            )
    except (ValueError, IndexError, np.linalg.LinAlgError) as err:
        log.debug("Lucas-Kanade failed (%s); zero motion", err)
        return np.zeros(shape)
    if velocity.shape != shape or not np.isfinite(velocity).all():
        log.debug("Lucas-Kanade gave a non-finite or misshapen field; zero motion")
        return np.zeros(shape)
    return velocity


def weighted_flow_pixels_per_step(
    frames_grey: NDArray[np.floating], weights: tuple[float, ...]
) -> NDArray[np.float64]:
    """sum_k weights[k] * flow of pair k (k = 0: the last two frames). frames (T, H, W)."""
    if frames_grey.shape[0] < len(weights) + 1:
        raise ValueError(
            f"{len(weights)} flow(s) need {len(weights) + 1} frames, got {frames_grey.shape[0]}"
        )
    velocity = np.zeros((2, *frames_grey.shape[1:]))
    for k, weight in enumerate(weights):
        last = frames_grey.shape[0] - 1 - k
        velocity += weight * flow_pixels_per_step(frames_grey[last - 1], frames_grey[last])
    return velocity


def motion_field(
    frames_grey: NDArray[np.floating], variant: str = DEFAULT_VARIANT
) -> NDArray[np.float64]:
    """THE motion field of a nowcast: (2, H, W) cells per step (x, y) from (T, H, W) grey inputs.

    NaN (outside coverage) is read as no echo.
    """
    frames = np.nan_to_num(np.asarray(frames_grey, dtype=np.float64), nan=0.0)
    return weighted_flow_pixels_per_step(frames, variant_weights(variant))


def forecast_each_site(
    inputs_grey: NDArray[np.floating],
    n_leads: int,
    variant: str,
    forecast: Callable[[NDArray[np.float64], NDArray[np.float64], int], NDArray[np.floating]],
) -> NDArray[np.float32]:
    """Site by site: the motion field of its inputs, then ``forecast(frames, velocity, n_leads)``.

    ``inputs_grey`` (B, T, H, W), NaN read as no echo; ``forecast`` returns (n_leads, H, W)
    grey. Returns (B, n_leads, H, W) float32.
    """
    batch, _, height, width = inputs_grey.shape
    out = np.empty((batch, int(n_leads), height, width), dtype=np.float32)
    for b in range(batch):
        frames = np.nan_to_num(np.asarray(inputs_grey[b], dtype=np.float64), nan=0.0)
        out[b] = forecast(frames, motion_field(frames, variant), int(n_leads))
    return out


def lead_displacements(velocity: NDArray[np.floating], n_leads: int) -> NDArray[np.float64]:
    """(n_leads, 2, H, W) displacement (cells, x then y) of lead k's semi-Lagrangian trajectory.

    Exactly the displacements pysteps' ``semilagrangian.extrapolate`` applies at each step with
    its defaults (one midpoint iteration a step, velocity interpolated bilinearly with mode
    "nearest"): the same arithmetic as its loop, written out here because pysteps returns only
    the last step's displacement (`tests/model/test_lagrangian.py` checks the equality).
    """
    v = np.asarray(velocity, dtype=np.float64)
    cols, rows = np.meshgrid(np.arange(v.shape[2]), np.arange(v.shape[1]))

    def velocity_at(displacement: NDArray[np.float64]) -> NDArray[np.float64]:
        coords = [rows + displacement[1], cols + displacement[0]]
        return np.stack(
            [
                map_coordinates(v[i], coords, mode="nearest", order=1, prefilter=False)
                for i in (0, 1)
            ]
        )

    out = np.empty((int(n_leads), *v.shape))
    displacement = np.zeros_like(v)
    increment = v.copy()
    for k in range(int(n_leads)):
        increment = velocity_at(displacement - increment / 2.0)
        displacement = displacement - increment
        increment = velocity_at(displacement)
        out[k] = displacement
    return out


def warp_by_displacement(
    field: NDArray[np.floating],
    displacement: NDArray[np.floating],
    outside: float = 0.0,
    inflow: str = "zero",
) -> NDArray[np.float64]:
    """``field`` (H, W) read at ``grid + displacement`` (2, H, W): bilinear; beyond the grid's
    outermost cell centres ``outside`` (``inflow="zero"``) or the nearest boundary cell of the
    field's rain-rate blur (``inflow="edge"``, `rain_blur_grey` with `INFLOW_SIGMA_CELLS`).

    pysteps' semi-Lagrangian interpolation (``map_coordinates``, order 1, constant mode).
    """
    h, w = field.shape
    cols, rows = np.meshgrid(np.arange(w), np.arange(h))
    coords = [rows + displacement[1], cols + displacement[0]]
    values = np.asarray(field, dtype=np.float64)
    moved = map_coordinates(values, coords, mode="constant", cval=outside, order=1, prefilter=False)
    if check_inflow(inflow) == "zero":
        return moved
    inside = (coords[0] >= 0) & (coords[0] <= h - 1) & (coords[1] >= 0) & (coords[1] <= w - 1)
    source = rain_blur_grey(values, INFLOW_SIGMA_CELLS)
    flowing_in = map_coordinates(source, coords, mode="nearest", order=1, prefilter=False)
    return np.where(inside, moved, flowing_in)


def advect_grey(
    frame_grey: NDArray[np.floating], velocity: NDArray[np.float64], n_leads: int
) -> NDArray[np.float32]:
    """Semi-Lagrangian advection of an (H, W) grey frame: (n_leads, H, W) float32 in [0, 1].

    ``velocity`` (2, H, W) in cells per step; cells advected from outside the domain are 0.
    """
    if not np.any(velocity) or not np.nanmax(frame_grey, initial=0.0) > 0.0:
        out = np.repeat(frame_grey[np.newaxis], n_leads, axis=0)
    else:
        _, extrapolate = pysteps_methods()
        out = extrapolate(
            np.nan_to_num(frame_grey.astype(np.float64), nan=0.0),
            velocity,
            int(n_leads),
            outval=0.0,
            verbose=False,
        )
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0).astype(np.float32)


def advect_per_lead(
    fields_grey: NDArray[np.floating], displacements: NDArray[np.floating], inflow: str = "zero"
) -> NDArray[np.float32]:
    """Lead k's field (K, H, W) moved by lead k's displacement (K, 2, H, W): (K, H, W) in [0, 1].

    With every field equal to the last frame and ``inflow="zero"`` this is `advect_grey` of that
    frame; ``inflow`` as `warp_by_displacement`.
    """
    out = np.empty(fields_grey.shape, dtype=np.float32)
    for k in range(fields_grey.shape[0]):
        field = np.nan_to_num(fields_grey[k], nan=0.0)
        out[k] = warp_by_displacement(field, displacements[k], inflow=inflow)
    return np.clip(out, 0.0, 1.0)
