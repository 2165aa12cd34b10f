"""Extrapolation nowcast (ROVER-like): Lucas-Kanade optical flow + semi-Lagrangian advection.

The open equivalent of the ROVER baselines (METHOD.md, "Baselines the paper beat"), with
pysteps' dense Lucas-Kanade flow and semi-Lagrangian extrapolation applied to grey levels
(grey is linear in dBZ, the usual log-domain field for motion). Variants:
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
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model.methods import check_inputs

log = logging.getLogger(__name__)

# weights of the flows of consecutive frame pairs, most recent pair first
_VARIANT_WEIGHTS: dict[str, tuple[float, ...]] = {
    "rover1": (1.0,),
    "rover2": (0.5, 0.5),
    "rover3": (0.7, 0.2, 0.1),
}


def variant_names() -> tuple[str, ...]:
    """Values accepted for ``ExtrapolationMethod(variant=...)``."""
    return tuple(_VARIANT_WEIGHTS)


def _pysteps_methods() -> tuple[Callable[..., Any], Callable[..., Any]]:
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
    dense_lk, _ = _pysteps_methods()
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


def advect_grey(
    frame_grey: NDArray[np.floating], velocity: NDArray[np.float64], n_leads: int
) -> NDArray[np.float32]:
    """Semi-Lagrangian advection of an (H, W) grey frame: (n_leads, H, W) float32 in [0, 1].

    ``velocity`` (2, H, W) in cells per step; cells advected from outside the domain are 0.
    """
    if not np.any(velocity) or not np.nanmax(frame_grey, initial=0.0) > 0.0:
        out = np.repeat(frame_grey[np.newaxis], n_leads, axis=0)
    else:
        _, extrapolate = _pysteps_methods()
        out = extrapolate(
            np.nan_to_num(frame_grey.astype(np.float64), nan=0.0),
            velocity,
            int(n_leads),
            outval=0.0,
            verbose=False,
        )
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0).astype(np.float32)


class ExtrapolationMethod:
    """``method(inputs_grey (B, T_in, H, W), n_leads) -> (B, n_leads, H, W)`` float32 grey.

    ``variant``: "rover1" (needs T_in >= 2), "rover2" (>= 3) or "rover3" (>= 4).
    """

    name: str = "extrapolation"

    def __init__(self, variant: str = "rover1") -> None:
        if variant not in _VARIANT_WEIGHTS:
            raise ValueError(
                f"unknown extrapolation variant {variant!r}; "
                f"valid variants: {', '.join(variant_names())}"
            )
        self.variant = variant
        self.weights = _VARIANT_WEIGHTS[variant]

    def __call__(self, inputs_grey: np.ndarray, n_leads: int) -> np.ndarray:
        inputs = check_inputs(inputs_grey, n_leads)
        if inputs.shape[1] < len(self.weights) + 1:
            raise ValueError(
                f"{self.variant} needs at least {len(self.weights) + 1} input frames, "
                f"got {inputs.shape[1]}"
            )
        batch, _, height, width = inputs.shape
        out = np.empty((batch, int(n_leads), height, width), dtype=np.float32)
        for b in range(batch):
            frames = np.nan_to_num(inputs[b], nan=0.0)
            velocity = weighted_flow_pixels_per_step(frames, self.weights)
            out[b] = advect_grey(frames[-1], velocity, int(n_leads))
        return out
