"""The encoder-forecaster ConvLSTM (second tier), built from one `ConvLSTMConfig`.

Data flow (defaults in brackets, METHOD.md):

1. Each input frame ``(B, 1, 100, 100)`` of grey levels in [0, 1] goes through space-to-depth
   (``pixel_unshuffle`` by ``patch_size`` [2]) to ``(B, 4, 50, 50)``.
2. Encoder: ``len(hidden_channels)`` [2] stacked `ConvLSTMCell` layers read the ``in_frames``
   [5] frames; layer ``l + 1`` reads the hidden state of layer ``l``.
3. Forecaster: the same stack shape; layer ``l`` starts from a copy of encoder layer ``l``'s
   final ``(H, C)``. As in the paper the forecaster has NO input: its first layer is a cell with
   ``in_channels=0`` (its fused convolution reads ``H`` only; no zero frames, no unused
   weights); upper layers read the hidden state of the layer below. It runs ``out_frames`` [15]
   steps.
4. At each forecast step the hidden states of all forecaster layers are concatenated and a
   1 x 1 convolution maps them to ``patch_size**2`` channels; depth-to-space
   (``pixel_shuffle``) gives one ``(H, W)`` frame of logits.

`EncoderForecaster.forward` returns logits (the loss, cross-entropy on grey levels, lives in
the trainer); `EncoderForecaster.predict` returns sigmoid probabilities, i.e. grey in [0, 1].
No device is hard-coded: move the model with ``.to(device)``; ``torch.autocast`` (bfloat16)
and ``channels_last`` work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from model.cell import ConvLSTMCell, State
from model.config import ConvLSTMConfig


class EncoderForecaster(nn.Module):
    """``forward(frames (B, in_frames, H, W) grey) -> logits (B, out_frames, H, W)``."""

    def __init__(self, config: ConvLSTMConfig) -> None:
        super().__init__()
        self.config = config
        grid = (config.grid_cells, config.grid_cells)
        hidden = config.hidden_channels

        def stack(first_in: int) -> nn.ModuleList:
            inputs = (first_in, *hidden[:-1])
            return nn.ModuleList(
                ConvLSTMCell(n_in, n_hidden, config.kernel_size, grid, config.peephole)
                for n_in, n_hidden in zip(inputs, hidden, strict=True)
            )

        self.encoder = stack(config.patch_channels)
        self.forecaster = stack(0)
        self.head = nn.Conv2d(sum(hidden), config.patch_channels, kernel_size=1)

    def _check_frames(self, frames: Tensor) -> Tensor:
        c = self.config
        expected = (c.in_frames, c.frame_cells, c.frame_cells)
        if frames.ndim != 4 or tuple(frames.shape[1:]) != expected:
            raise ValueError(
                f"frames must be (B, {c.in_frames}, {c.frame_cells}, {c.frame_cells}), "
                f"got {tuple(frames.shape)}"
            )
        if not frames.is_floating_point():
            raise ValueError(f"frames must be floating-point grey levels, got {frames.dtype}")
        return frames.to(self.head.weight.dtype)

    def forward(self, frames: Tensor) -> Tensor:
        """Forecast logits.

        Args:
            frames: ``(B, in_frames, frame_cells, frame_cells)`` grey levels in [0, 1],
                oldest frame first.

        Returns:
            ``(B, out_frames, frame_cells, frame_cells)`` logits (pre-sigmoid grey), lead 1
            first.
        """
        frames = self._check_frames(frames)
        c = self.config
        batch = frames.shape[0]
        states: list[State | None] = [None] * len(self.encoder)
        for t in range(c.in_frames):
            x: Tensor | None = F.pixel_unshuffle(frames[:, t : t + 1], c.patch_size)
            for layer, cell in enumerate(self.encoder):
                x, states[layer] = cell(x, states[layer])
        # The forecaster starts from the encoder's final states, layer by layer (no in-place
        # ops anywhere, so sharing the tensors is a copy as far as values and gradients go).
        steps: list[Tensor] = []
        for _ in range(c.out_frames):
            x = None
            layer_hidden: list[Tensor] = []
            for layer, cell in enumerate(self.forecaster):
                x, states[layer] = cell(x, states[layer])
                layer_hidden.append(x)
            steps.append(torch.cat(layer_hidden, dim=1))
        # One 1 x 1 convolution over all steps at once: (B * T, sum(hidden), h, w).
        stacked = torch.stack(steps, dim=1).flatten(0, 1)
        logits = F.pixel_shuffle(self.head(stacked), c.patch_size)  # (B * T, 1, H, W)
        return logits.reshape(batch, c.out_frames, c.frame_cells, c.frame_cells)

    @torch.no_grad()
    def predict(self, frames: Tensor) -> Tensor:
        """Forecast grey levels in [0, 1] (sigmoid of `forward`, float32, no gradients).

        Args:
            frames: ``(B, in_frames, frame_cells, frame_cells)`` grey levels in [0, 1].

        Returns:
            ``(B, out_frames, frame_cells, frame_cells)`` float32 grey in [0, 1].
        """
        return torch.sigmoid(self(frames).float())


def build_model(config: ConvLSTMConfig) -> EncoderForecaster:
    """A freshly initialised `EncoderForecaster` for ``config`` (on CPU, float32)."""
    return EncoderForecaster(config)


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters (weights and biases) in ``model``."""
    return sum(p.numel() for p in model.parameters())
