"""The semi-Lagrangian advection of `model.advection.motion`, batched over sites in torch.

Same trajectories and interpolation as pysteps' ``semilagrangian.extrapolate`` (bilinear,
velocity clamped at the border, a field read as 0 beyond its outermost cell centres), in
float64 with ``grid_sample``:
all sites of a batch and all leads at once instead of one ``map_coordinates`` call per site,
lead and component. The served `convlstm` moves its inputs and leads with it; it agrees with the
numpy path to rounding (about 1e-12 grey; `tests/model/test_lagrangian.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from model.advection.motion import INFLOW_SIGMA_CELLS, check_inflow
from model.advection.rain_blur import rain_blur_at_border


def _grid(displacement: Tensor) -> Tensor:
    """``grid_sample`` grid (N, H, W, 2) reading at cell centre + ``displacement`` (N, 2, H, W)."""
    _, _, h, w = displacement.shape
    rows = torch.arange(h, dtype=displacement.dtype, device=displacement.device).view(1, h, 1)
    cols = torch.arange(w, dtype=displacement.dtype, device=displacement.device).view(1, 1, w)
    x = (cols + displacement[:, 0]) * (2.0 / (w - 1)) - 1.0
    y = (rows + displacement[:, 1]) * (2.0 / (h - 1)) - 1.0
    return torch.stack([x, y], dim=-1)


def _sample(field: Tensor, displacement: Tensor, padding: str) -> Tensor:
    return _sample_on(field, _grid(displacement), padding)


def _sample_on(field: Tensor, grid: Tensor, padding: str) -> Tensor:
    return F.grid_sample(field, grid, mode="bilinear", padding_mode=padding, align_corners=True)


def lead_displacements(velocity: Tensor, n_leads: int) -> Tensor:
    """(B, n_leads, 2, H, W) displacements of each lead's trajectory from (B, 2, H, W) motion.

    The batched twin of `model.advection.motion.lead_displacements` (one midpoint iteration a step).
    """
    v = velocity.to(torch.float64)
    displacement = torch.zeros_like(v)
    increment = v.clone()
    out = []
    for _ in range(int(n_leads)):
        increment = _sample(v, displacement - increment / 2.0, "border")
        displacement = displacement - increment
        increment = _sample(v, displacement, "border")
        out.append(displacement)
    return torch.stack(out, dim=1)


def warp(fields: Tensor, displacements: Tensor, inflow: str = "zero") -> Tensor:
    """Field k of each site (B, K, H, W) read at its displacement k (B, K, 2, H, W).

    Returns (B, K, H, W) float64; beyond the grid the fields are 0 (``inflow="zero"``) or read
    at the nearest boundary cell of their rain-rate blur (``inflow="edge"``: ``grid_sample``'s
    "border" padding, scipy's "nearest" mode; `model.advection.motion.warp_by_displacement`).
    Differentiable in ``fields``.
    """
    b, k, h, w = fields.shape
    flat = fields.to(torch.float64).reshape(b * k, 1, h, w)
    grid = _grid(displacements.reshape(b * k, 2, h, w))
    # scipy's "constant" mode: a point beyond the outermost cell centres reads 0 outright
    where = inside(displacements)
    moved = _sample_on(flat, grid, "zeros").reshape(b, k, h, w) * where
    if check_inflow(inflow) == "zero":
        return moved
    # float32 is plenty for a smoothed guess; "border" padding reads only the outermost cells
    source = rain_blur_at_border(flat.float(), INFLOW_SIGMA_CELLS)
    flowing_in = _sample_on(source, grid.float(), "border").reshape(b, k, h, w)
    return torch.where(where, moved, flowing_in.to(torch.float64))


def inside(displacements: Tensor) -> Tensor:
    """(..., H, W) bool: where cell centre + displacement (..., 2, H, W) lies in the grid."""
    h, w = displacements.shape[-2:]
    cols = torch.arange(w, dtype=displacements.dtype, device=displacements.device)
    rows = torch.arange(h, dtype=displacements.dtype, device=displacements.device)
    x = cols.view(1, w) + displacements[..., 0, :, :]
    y = rows.view(h, 1) + displacements[..., 1, :, :]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
