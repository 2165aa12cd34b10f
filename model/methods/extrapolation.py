"""Extrapolation nowcast (ROVER-like): Lucas-Kanade optical flow + semi-Lagrangian advection.

The open equivalent of the ROVER baselines (METHOD.md, "Baselines the paper beat"): the shared
motion field of `model.advection.motion` (pysteps' dense Lucas-Kanade on grey levels, linear in
dBZ) and
pysteps' semi-Lagrangian extrapolation of the last frame. Variants "rover1" (default),
"rover2" and "rover3" choose the frame pairs the field is taken from (`model.advection.motion`).

``extrapolation-inflow`` is the same nowcast where a trajectory starts beyond the grid: pysteps
reads 0 there, it reads the nearest boundary cell of the last frame's rain-rate blur (the
"edge" inflow of `model.advection.motion`). It is exactly the served `convlstm` with a network
that changes nothing (its zero start), so live and offline verification show what the network
adds beyond the inflow (docs/evaluation/training-choices.md, rounds 4 and 5).
"""

from __future__ import annotations

import numpy as np

from model.advection.motion import (
    DEFAULT_VARIANT,
    advect_grey,
    advect_per_lead,
    forecast_each_site,
    lead_displacements,
    variant_weights,
)
from model.methods import check_inputs


class ExtrapolationMethod:
    """``method(inputs_grey (B, T_in, H, W), n_leads) -> (B, n_leads, H, W)`` float32 grey.

    ``variant``: "rover1" (needs T_in >= 2), "rover2" (>= 3) or "rover3" (>= 4).
    """

    name: str = "extrapolation"
    inflow: str = "zero"  # what a trajectory from beyond the grid reads (pysteps: 0)

    def __init__(self, variant: str = DEFAULT_VARIANT) -> None:
        self.weights = variant_weights(variant)
        self.variant = variant

    def __call__(self, inputs_grey: np.ndarray, n_leads: int) -> np.ndarray:
        inputs = check_inputs(inputs_grey, n_leads)
        if inputs.shape[1] < len(self.weights) + 1:
            raise ValueError(
                f"{self.variant} needs at least {len(self.weights) + 1} input frames, "
                f"got {inputs.shape[1]}"
            )
        return forecast_each_site(inputs, n_leads, self.variant, self.advect)

    def advect(self, frames: np.ndarray, velocity: np.ndarray, n_leads: int) -> np.ndarray:
        """The last of ``frames`` (T, H, W) moved ``n_leads`` steps: (n_leads, H, W) grey."""
        if self.inflow == "zero":
            return advect_grey(frames[-1], velocity, n_leads)
        last = np.repeat(frames[-1:], n_leads, axis=0)
        return advect_per_lead(last, lead_displacements(velocity, n_leads), inflow=self.inflow)


class InflowExtrapolationMethod(ExtrapolationMethod):
    """`ExtrapolationMethod` with the "edge" inflow: rain from beyond the grid read at the
    nearest boundary cell of the last frame's rain-rate blur instead of 0."""

    name: str = "extrapolation-inflow"
    inflow: str = "edge"
