"""The encoder-forecaster ConvLSTM (second tier), built from one `NetworkConfig`.

The same wiring serves ``saconvlstm``: only the cell differs (`model.nets.sa_cell`), so the two
are compared on equal terms.

Data flow (defaults in brackets, METHOD.md):

1. Each input frame ``(B, 1, 100, 100)`` of grey levels in [0, 1] goes through space-to-depth
   (``pixel_unshuffle`` by ``patch_size`` [2]) to ``(B, 4, 50, 50)``.
2. Encoder: ``len(hidden_channels)`` [2] stacked `ConvLSTMCell` (or `SAConvLSTMCell`) layers
   read the ``in_frames`` [5] frames; layer ``l + 1`` reads the hidden state of layer ``l``.
3. Forecaster: the same stack shape; layer ``l`` starts from a copy of encoder layer ``l``'s
   final ``(H, C)``. As in the paper the forecaster has NO input: its first layer is a cell with
   ``in_channels=0`` (its fused convolution reads ``H`` only; no zero frames, no unused
   weights); upper layers read the hidden state of the layer below. It runs ``out_frames`` [15]
steps. 4. At each forecast step the hidden states of all forecaster layers are concatenated and a
   1 x 1 convolution maps them to ``patch_size**2`` channels; depth-to-space
   (``pixel_shuffle``) gives one ``(H, W)`` frame of logits.

`EncoderForecaster.forward` returns logits (the loss, cross-entropy on grey levels, lives in
the trainer); `EncoderForecaster.predict` returns sigmoid probabilities, i.e. grey in [0, 1].
No device is hard-coded: move the model with ``.to(device)``; ``torch.autocast`` (bfloat16)
and ``channels_last`` work.
"""

from __future__ import annotations

import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from model.nets.architectures import get_architecture
from model.nets.cell import ConvLSTMCell
from model.nets.config import NetworkConfig
from model.nets.network import FrameSequenceNetwork
from model.nets.sa_cell import SAConvLSTMCell


def make_cell(config: NetworkConfig, in_channels: int, hidden_channels: int) -> nn.Module:
    """One layer's cell: a `SAConvLSTMCell` for ``saconvlstm``, else a `ConvLSTMCell`."""
    shape = (
        in_channels,
        hidden_channels,
        config.kernel_size,
        (config.grid_cells, config.grid_cells),
        config.peephole,
        config.state_kernel_size,
    )
    cell = get_architecture(config.architecture).cell
    if cell == "saconvlstm":
        return SAConvLSTMCell(*shape, attention_channels=config.attention_channels)
    if cell != "convlstm":
        raise ValueError(f"EncoderForecaster has no {cell!r} cells ({config.architecture})")
    return ConvLSTMCell(*shape)


def cell_stack(config: NetworkConfig, first_in: int) -> nn.ModuleList:
    """The stacked cells of an encoder (``first_in`` = patch channels) or of a forecaster
    (``first_in`` = 0: no input); layer ``l + 1`` reads layer ``l``'s hidden state."""
    hidden = config.hidden_channels
    inputs = (first_in, *hidden[:-1])
    return nn.ModuleList(
        make_cell(config, n_in, n_hidden) for n_in, n_hidden in zip(inputs, hidden, strict=True)
    )


class EncoderForecaster(FrameSequenceNetwork):
    """``forward(frames (B, in_frames, H, W) grey) -> logits (B, out_frames, H, W)``."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_channels
        self.encoder = cell_stack(config, config.patch_channels)
        self.forecaster = cell_stack(config, 0)
        self.head = nn.Conv2d(sum(hidden), config.patch_channels, kernel_size=1)

    takes_crops = True

    def forward(self, frames: Tensor, origin: tuple[int, int] | None = None) -> Tensor:
        """Forecast logits.

        Args:
            frames: ``(B, in_frames, frame_cells, frame_cells)`` grey levels in [0, 1],
                oldest frame first; with ``origin``, a crop ``(B, in_frames, h, w)`` of them
                (training on crops; `check_frames` says what a crop may be).
            origin: (row, column) in frame cells of the crop's top-left corner; None for
                whole frames.

        Returns:
            ``(B, out_frames, H, W)`` logits (pre-sigmoid grey) of the frames' ``(H, W)``,
            lead 1 first.
        """
        frames = self.check_frames(frames, origin)
        c = self.config
        batch, height, width = frames.shape[0], frames.shape[-2], frames.shape[-1]
        # One 1 x 1 convolution over all steps at once: (B * T, sum(hidden), h, w).
        stacked = self.forecast_states(frames, origin)
        logits = F.pixel_shuffle(self.head(stacked), c.patch_size)  # (B * T, 1, H, W)
        return logits.reshape(batch, c.out_frames, height, width)
