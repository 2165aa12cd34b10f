"""The fully connected LSTM baseline (FC-LSTM) of the method, in the same encoder-forecaster
wiring as the ConvLSTM.

The paper's FC-LSTM reads each frame as one flat vector and has 2 layers of 2,000 units.
On the 100 x 100 radar grid a flat frame is 10,000 values, and 2,000 units would make
about 100 million weights, more than a 2-core CPU can train here. This one keeps the idea at
the ConvLSTM's size (defaults in `model.nets.architectures`, about 2.5 million weights against the
ConvLSTM's 2.8 million):

1. each frame ``(B, 1, 100, 100)`` is average-pooled by ``patch_size`` [4] and flattened:
   ``(B, 625)``;
2. encoder: ``len(hidden_channels)`` [2] stacked `FCLSTMCell` layers of ``hidden_channels``
   [256, 256] units read the ``in_frames`` frames;
3. forecaster: the same stack, without input on its first layer, starts from the encoder's
   final states and runs ``out_frames`` steps;
4. per step, a linear head maps the concatenated hidden states to the pooled grid's logits
   ``(B, 25 x 25)``, upsampled bilinearly to ``(B, 100, 100)``.

Every cell sees the whole frame at once: there is no notion of neighbourhood, which is
what the ConvLSTM adds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from model.nets.config import NetworkConfig
from model.nets.network import FrameSequenceNetwork


class FCLSTMCell(nn.Module):
    """One fully connected LSTM layer step with peephole terms (Graves 2013), as in the paper.

    ``forward(x (B, in) or None, state (H, C) each (B, units) or None) -> (H', (H', C'))``.
    ``in_features=0`` makes a cell without input. Gate order i, f, c, o; forget bias 1.
    """

    def __init__(self, in_features: int, units: int, peephole: bool = True) -> None:
        super().__init__()
        self.in_features = in_features
        self.units = units
        self.gates = nn.Linear(in_features + units, 4 * units)
        with torch.no_grad():
            self.gates.bias.zero_()
            self.gates.bias[units : 2 * units].fill_(1.0)
        self.peepholes = nn.Parameter(torch.zeros(3, units)) if peephole else None

    def forward(
        self, x: Tensor | None, state: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        if state is None:
            if x is None:
                raise ValueError("a cell without input needs an explicit state")
            zeros = x.new_zeros(x.shape[0], self.units)
            state = (zeros, zeros)
        h, c = state
        i, f, g, o = self.gates(h if x is None else torch.cat([x, h], dim=1)).chunk(4, dim=1)
        if self.peepholes is not None:
            i = i + self.peepholes[0] * c
            f = f + self.peepholes[1] * c
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        if self.peepholes is not None:
            o = o + self.peepholes[2] * c_next
        h_next = torch.sigmoid(o) * torch.tanh(c_next)
        return h_next, (h_next, c_next)


class FCEncoderForecaster(FrameSequenceNetwork):
    """``forward(frames (B, in_frames, H, W) grey) -> logits (B, out_frames, H, W)``."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        units = config.hidden_channels
        pooled = config.grid_cells**2

        def stack(first_in: int) -> nn.ModuleList:
            inputs = (first_in, *units[:-1])
            return nn.ModuleList(
                FCLSTMCell(n_in, n_units, config.peephole)
                for n_in, n_units in zip(inputs, units, strict=True)
            )

        self.encoder = stack(pooled)
        self.forecaster = stack(0)
        self.head = nn.Linear(sum(units), pooled)

    def forward(self, frames: Tensor, origin: tuple[int, int] | None = None) -> Tensor:
        """Forecast logits ``(B, out_frames, frame_cells, frame_cells)`` from grey frames.

        ``origin`` (a crop) is refused: the weights see the whole flattened frame."""
        frames = self.check_frames(frames, origin)
        c = self.config
        batch = frames.shape[0]
        pooled = F.avg_pool2d(frames, c.patch_size).flatten(2)  # (B, T_in, g * g)
        hidden = self.encode_forecast([pooled[:, t] for t in range(c.in_frames)])
        coarse = self.head(hidden)  # (B, T_out, g * g)
        grid = coarse.reshape(batch * c.out_frames, 1, c.grid_cells, c.grid_cells)
        logits = F.interpolate(
            grid, size=(c.frame_cells, c.frame_cells), mode="bilinear", align_corners=False
        )
        return logits.reshape(batch, c.out_frames, c.frame_cells, c.frame_cells)
