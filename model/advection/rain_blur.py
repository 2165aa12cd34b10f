"""Gaussian blurs of rain rate on grey fields, in torch (differentiable, batched).

Grey levels are logarithmic in rain rate (R ~ 10 ** (`RAIN_EXPONENT` * grey) for the default
normalisation: grey = (dBZ + 10) / 80 and Marshall-Palmer), so a blur averages
``10 ** (RAIN_EXPONENT * grey)`` and returns its logarithm: averaging grey levels directly
would shrink the rain area (``RAIN_EXPONENT`` lives in the numpy-only `model.advection.motion`).
Used by the Lagrangian ConvLSTM's smoothing maps (`model.nets.lagrangian_net`) and by the
smoothed inflow at the grid's edge (`model.advection.advection_torch`, which needs the blur only
on the grid's outermost cells: `rain_blur_at_border`; numpy twin
`model.advection.motion.rain_blur_grey`).
"""

from __future__ import annotations

import math
from functools import lru_cache

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


@lru_cache(maxsize=32)
def _blur_matrix(n: int, sigma_cells: float) -> Tensor:
    """(n, n) float64 matrix of the 1-D Gaussian blur with replicated edges: row i weighs the
    cells whose clamped offsets land on them (``F.pad(..., mode="replicate")`` + convolution)."""
    kernel = gaussian_kernel(sigma_cells)
    r = kernel.numel() // 2
    offsets = torch.arange(-r, r + 1)
    index = (torch.arange(n).view(n, 1) + offsets.view(1, -1)).clamp(0, n - 1)
    return torch.zeros(n, n, dtype=torch.float64).scatter_add_(1, index, kernel.expand(n, -1))


def rain_blur_at_border(grey: Tensor, sigma_cells: float) -> Tensor:
    """`rain_blurs` of ``grey`` (N, 1, H, W) with one sigma, on the grid's outermost cells only.

    Returns (N, 1, H, W) in ``grey``'s dtype: the blur on the first and last row and column (to
    rounding), 0 inside them. This is all the "edge" inflow reads (a trajectory from beyond the
    grid reads its nearest boundary cell), at about 2 / (2 r + 1) of the full blur's work: the
    blur is separable, so a border row is one weighted sum of rows, then one 1-D blur.
    Computed in float32 unless ``grey`` is float64; differentiable in ``grey``.
    """
    dtype = torch.float64 if grey.dtype == torch.float64 else torch.float32
    rain = torch.pow(10.0, RAIN_EXPONENT * grey.to(dtype))[:, 0]  # (N, H, W)
    h, w = rain.shape[-2:]
    along_h = _blur_matrix(h, float(sigma_cells)).to(device=grey.device, dtype=dtype)
    along_w = _blur_matrix(w, float(sigma_cells)).to(device=grey.device, dtype=dtype)
    first_last_row = torch.tensor([0, h - 1], device=grey.device)
    first_last_col = torch.tensor([0, w - 1], device=grey.device)
    rows = along_h[first_last_row] @ rain @ along_w.T  # (N, 2, W)
    cols = along_h @ rain @ along_w[first_last_col].T  # (N, H, 2)
    border = torch.ones_like(rain)  # rain rate 1 is grey 0
    border[:, :, 0] = cols[:, :, 0]
    border[:, :, -1] = cols[:, :, 1]
    border[:, 0, :] = rows[:, 0]
    border[:, -1, :] = rows[:, 1]
    out = (torch.log10(border) / RAIN_EXPONENT).clamp(0.0, 1.0)
    return out.unsqueeze(1).to(grey.dtype)
