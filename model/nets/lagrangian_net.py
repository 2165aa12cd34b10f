"""The Lagrangian ConvLSTM (second tier): growth, decay and smoothing learned where advection
cannot reach them (after Ritvanen et al. 2023, L-CNN).

It reads the five inputs already moved to the issue time
(`model.advection.lagrangian.lagrangian_inputs`)
and returns, for each lead, the field at the issue time that the advection then carries k steps
(`model.advection.lagrangian.to_eulerian`). The field is the last input changed in two smooth ways:

    out_k = clip(min(last + r_k + sum_j w_kj * (blur_j(last) - last), input max), 0, 1)

- ``r_k``: growth (> 0) and decay (< 0) in grey levels;
- ``w_kj``: how much of the Gaussian blur ``j`` (sigma 1, 2, 4 and 8 cells) replaces the last
  frame, the smoothing that lost small-scale predictability calls for at long leads. The blurs
  average rain rates, not grey levels (averaging in the logarithmic grey domain shrinks the
  rain area): grey g is ~ log10(R) / `RAIN_EXPONENT` plus a constant that cancels
  (`model.advection.rain_blur`).

Both come from the same encoder-forecaster wiring as the paper's network (METHOD.md: 2 ConvLSTM
layers, space-to-depth by ``patch_size``, forecaster without input), whose 1 x 1 head gives the
``1 + len(BLUR_SIGMAS_CELLS)`` maps per lead on the coarse grid; they are upsampled bilinearly,
so no depth-to-space checkerboard reaches the output. No cell exceeds the brightest cell of the
inputs. The head starts at zero: an untrained network returns the last frame at every lead,
i.e. exactly the extrapolation nowcast (with the config's ``inflow="edge"``: wherever the
trajectory stays in the grid; the field's edge cells are what flows in from beyond).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from model.advection.rain_blur import rain_blurs
from model.nets.config import NetworkConfig
from model.nets.convlstm import cell_stack
from model.nets.network import FrameSequenceNetwork

BLUR_SIGMAS_CELLS = (1.0, 2.0, 4.0, 8.0)
"""Standard deviations (grid cells of the 100 x 100 frame) of the blurs the network mixes in."""


class LagrangianForecaster(FrameSequenceNetwork):
    """``forward(lagrangian_inputs (B, in, H, W) grey) -> (B, out, H, W)`` grey in [0, 1]."""

    takes_crops = True

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = cell_stack(config, config.patch_channels)
        self.forecaster = cell_stack(config, 0)
        self.maps_per_lead = 1 + len(BLUR_SIGMAS_CELLS)
        self.head = nn.Conv2d(sum(config.hidden_channels), self.maps_per_lead, kernel_size=1)
        nn.init.zeros_(self.head.weight)
        assert self.head.bias is not None  # Conv2d's default
        nn.init.zeros_(self.head.bias)

    def forward(self, frames: Tensor, origin: tuple[int, int] | None = None) -> Tensor:
        """The Lagrangian forecast of each lead.

        Args:
            frames: ``(B, in_frames, H, W)`` grey inputs in Lagrangian coordinates (moved to
                the issue time), oldest first; whole frames or, with ``origin``, a crop.
            origin: (row, column) in frame cells of the crop's top-left corner; None for
                whole frames.

        Returns:
            ``(B, out_frames, H, W)`` grey in [0, 1] at the issue time, lead 1 first.
        """
        frames = self.check_frames(frames, origin)
        c = self.config
        batch, height, width = frames.shape[0], frames.shape[-2], frames.shape[-1]
        stacked = self.forecast_states(frames, origin)
        maps = F.interpolate(
            self.head(stacked), size=(height, width), mode="bilinear", align_corners=False
        ).reshape(batch, c.out_frames, self.maps_per_lead, height, width)
        last = frames[:, -1:]
        blurs = rain_blurs(last, BLUR_SIGMAS_CELLS)  # (B, J, H, W)
        smoothing = (maps[:, :, 1:] * (blurs - last).unsqueeze(1)).sum(dim=2)
        # no cell brighter than the brightest of the window's own inputs: growth within
        # 90 minutes is learnt from few events, and an overshoot costs rain MSE dearly
        ceiling = frames.amax(dim=(1, 2, 3), keepdim=True)
        return torch.minimum(last + maps[:, :, 0] + smoothing, ceiling).clamp(0.0, 1.0)

    @torch.no_grad()
    def predict(self, frames: Tensor) -> Tensor:
        """`forward` as float32 without gradients: the output already is grey in [0, 1]."""
        out: Tensor = self(frames)
        return out.float()
