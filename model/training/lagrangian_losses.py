"""The Lagrangian ConvLSTM's loss terms, on grey fields (B, K, H, W) in [0, 1] with a mask of
the cells that count (``inside``): grey MSE, a soft CSI at chosen rain thresholds, and the
rain-rate MSE. A run's loss is a weighted sum of terms named like ``soft_csi+mse+rain_mse``
(`build_loss`); `docs/evaluation/training-choices.md` says which were measured and kept.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from model.data.split import WET_GREYS

SOFT_CSI_GREYS = {0.5: WET_GREYS[2], 2.0: WET_GREYS[1], 5.0: WET_GREYS[0]}
"""Thresholds (mm/h) the soft CSI can be taken at, as grey levels."""

RAIN_CAP_MMH = 100.0
"""Rain rates are capped here in the rain-rate loss (one cell of hail must not dominate)."""

SOFT_CSI_WIDTH_GREY = 0.02
"""Width of the sigmoid that stands in for the step at a threshold (1.6 dBZ)."""


def masked_mse(out: Tensor, target: Tensor, inside: Tensor) -> Tensor:
    """Mean squared grey error over the cells where ``inside`` (all (B, K, H, W))."""
    weight = inside.float()
    return ((out - target) ** 2 * weight).sum() / weight.sum().clamp_min(1.0)


def soft_csi_loss(
    out: Tensor, target: Tensor, inside: Tensor, thresholds_mmh: tuple[float, ...] = (0.5, 2.0)
) -> Tensor:
    """1 - the CSI of sigmoid-softened exceedances, pooled over the batch, mean over the
    thresholds (keys of `SOFT_CSI_GREYS`)."""
    weight = inside.float()
    losses = []
    for grey in (SOFT_CSI_GREYS[t] for t in thresholds_mmh):
        forecast = torch.sigmoid((out - grey) / SOFT_CSI_WIDTH_GREY) * weight
        observed = (target >= grey).float() * weight
        hits = (forecast * observed).sum()
        union = forecast.sum() + observed.sum() - hits
        losses.append(1.0 - hits / union.clamp_min(1.0))
    return torch.stack(losses).mean()


def grey_to_rain_mmh(grey: Tensor) -> Tensor:
    """Rain rate (mm/h) of grey levels with the default normalisation (Marshall-Palmer,
    grey = (dBZ + 10) / 80), 0 where grey is 0, capped at `RAIN_CAP_MMH`."""
    dbz = grey * 80.0 - 10.0
    rain = torch.pow(10.0, dbz / 16.0) / 200.0 ** (1 / 1.6)
    return torch.where(grey > 0, rain, torch.zeros_like(rain)).clamp(max=RAIN_CAP_MMH)


def masked_rain_mse(out: Tensor, target: Tensor, inside: Tensor) -> Tensor:
    """Mean squared rain-rate error (mm2/h2) over the cells where ``inside``."""
    return masked_mse(grey_to_rain_mmh(out), grey_to_rain_mmh(target), inside)


LOSS_TERMS: dict[str, Callable[..., Tensor]] = {
    "mse": masked_mse,
    "soft_csi": soft_csi_loss,
    "rain_mse": masked_rain_mse,
}
"""Term name -> ``term(out, target, inside)`` on Lagrangian grey fields; a loss is a weighted
sum of terms, named like ``soft_csi+mse+rain_mse``."""

GREY_MSE_WEIGHT = 20.0
"""Weight of the grey MSE beside the soft CSI (the MSE is about 0.005, the soft CSI 0.5-0.9)."""


def build_loss(
    loss: str, soft_csi_mmh: tuple[float, ...], rain_mse_weight: float
) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """The loss named ``loss`` (terms of `LOSS_TERMS` joined by '+'): the soft CSI at
    ``soft_csi_mmh``, the grey MSE weighted `GREY_MSE_WEIGHT` beside a soft CSI (1 alone),
    the rain MSE weighted ``rain_mse_weight``."""
    names = loss.split("+")
    with_csi = "soft_csi" in names

    def total_loss(out: Tensor, target: Tensor, inside: Tensor) -> Tensor:
        total = torch.zeros((), device=out.device)
        for name in names:
            if name == "soft_csi":
                total = total + soft_csi_loss(out, target, inside, soft_csi_mmh)
            elif name == "mse":
                weight = GREY_MSE_WEIGHT if with_csi else 1.0
                total = total + weight * masked_mse(out, target, inside)
            else:
                total = total + rain_mse_weight * masked_rain_mse(out, target, inside)
        return total

    return total_loss
