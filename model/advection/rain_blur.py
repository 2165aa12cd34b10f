"""Gaussian blurs of rain rate on grey fields, in torch (differentiable, batched).

Grey levels are logarithmic in rain rate (R ~ 10 ** (`RAIN_EXPONENT` * grey) for the default
normalisation: grey = (dBZ + 10) / 80 and Marshall-Palmer), so a blur averages
``10 ** (RAIN_EXPONENT * grey)`` and returns its logarithm: averaging grey levels directly
would shrink the rain area (``RAIN_EXPONENT`` lives in the numpy-only `model.advection.motion`).
Used by the Lagrangian ConvLSTM's smoothing maps (`model.nets.lagrangian_net`) and by the
smoothed inflow at the grid's edge (`model.advection.advection_torch`; numpy twin
`model.advection.motion.rain_blur_grey`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from model.advection.motion import RAIN_EXPONENT


def gaussian_kernel(sigma_cells: float) -> Tensor:
    """Normalised 1-D Gaussian, radius 3 sigma: (2r + 1,) float64."""
    radius = max(1, math.ceil(3 * sigma_cells))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma_cells) ** 2)
    return kernel / kernel.sum()


def rain_blurs(last_grey: Tensor, sigmas_cells: tuple[float, ...]) -> Tensor:
    """Gaussian blurs of the rain rate of ``last_grey`` (B, 1, H, W), back in grey.

    Returns (B, len(sigmas), H, W) grey in [0, 1]; edges replicate the border cells. In
    float64 for float64 input, else float32 (then cast back to the input's dtype).
    """
    grey = last_grey if last_grey.dtype == torch.float64 else last_grey.float()
    rain = torch.pow(10.0, RAIN_EXPONENT * grey)  # up to a constant factor
    blurred = []
    for sigma in sigmas_cells:
        kernel = gaussian_kernel(sigma).to(device=rain.device, dtype=rain.dtype)
        r = kernel.numel() // 2
        out = F.pad(rain, (r, r, 0, 0), mode="replicate")
        out = F.conv2d(out, kernel.view(1, 1, 1, -1))
        out = F.pad(out, (0, 0, r, r), mode="replicate")
        out = F.conv2d(out, kernel.view(1, 1, -1, 1))
        blurred.append(torch.log10(out) / RAIN_EXPONENT)
    return torch.cat(blurred, dim=1).clamp(0.0, 1.0).to(last_grey.dtype)
