"""What every network of the family shares: the frame check, the encoder-forecaster loop and
``predict``.

A network maps ``(B, in_frames, H, W)`` grey levels in [0, 1] (oldest first) to
``(B, out_frames, H, W)`` logits (lead 1 first); ``predict`` is their sigmoid.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from model.nets.config import NetworkConfig


class FrameSequenceNetwork(nn.Module):
    """Base of the encoder-forecasters; subclasses set ``config``, the ``encoder`` and
    ``forecaster`` cell stacks (`nn.ModuleList`) and define ``forward``."""

    config: NetworkConfig
    encoder: nn.ModuleList
    forecaster: nn.ModuleList
    takes_crops: bool = False
    """Whether ``forward`` also takes a crop of the frame and its ``origin`` (convolutional
    networks do; the FC-LSTM, whose weights see the whole flattened frame, does not)."""

    def check_frames(self, frames: Tensor, origin: tuple[int, int] | None = None) -> Tensor:
        """``frames`` validated and cast to the weights' dtype; ValueError on a wrong shape.

        Args:
            frames: ``(B, in_frames, frame_cells, frame_cells)``, or with ``origin`` a crop
                ``(B, in_frames, h, w)`` of such frames, ``h`` and ``w`` multiples of the
            patch size. origin: (row, column) in frame cells of the crop's top-left corner,
                multiples of the patch size; None for whole frames.
        """
        c = self.config
        expected = (c.in_frames, c.frame_cells, c.frame_cells)
        if origin is not None:
            if not self.takes_crops:
                raise ValueError(f"a {c.architecture} network reads whole frames only")
            size = tuple(frames.shape[-2:])
            if frames.ndim == 4 and crop_fits(size, origin, c.patch_size, c.frame_cells):
                expected = (c.in_frames, *frames.shape[-2:])
            else:
                raise ValueError(
                    f"a crop at {origin} of shape {tuple(frames.shape[-2:])} must lie in the "
                    f"{c.frame_cells} x {c.frame_cells} frame, corner and sides multiples of "
                    f"the patch size {c.patch_size}"
                )
        if frames.ndim != 4 or tuple(frames.shape[1:]) != expected:
            shape = ", ".join(str(v) for v in expected)
            raise ValueError(f"frames must be (B, {shape}), got {tuple(frames.shape)}")
        if not frames.is_floating_point():
            raise ValueError(f"frames must be floating-point grey levels, got {frames.dtype}")
        return frames.to(next(self.parameters()).dtype)

    def encode_forecast(
        self, inputs: list[Tensor], origin: tuple[int, int] | None = None
    ) -> Tensor:
        """Run the ``encoder`` stack over ``inputs``, then the ``forecaster`` stack.

        The forecaster's layer ``l`` starts from the encoder's layer ``l`` final state and has
        no input on its first layer (the paper's wiring); a cell is called as
        ``cell(x or None, state or None) -> (hidden, state)``.

        Args:
            inputs: one tensor per input step, ``(B, ...)`` as the first encoder cell reads it.
            origin: grid cell of a crop's corner, passed to every cell; None: whole grids.

        Returns:
            ``(B, out_frames, sum(hidden), ...)``: per forecast step, the hidden states of
            all forecaster layers concatenated on dimension 1.
        """
        encoder: nn.ModuleList = self.encoder
        forecaster: nn.ModuleList = self.forecaster
        where = () if origin is None else (origin,)
        states: list[Any] = [None] * len(encoder)
        for step_input in inputs:
            x: Tensor | None = step_input
            for layer, cell in enumerate(encoder):
                x, states[layer] = cell(x, states[layer], *where)
        # No in-place ops anywhere: sharing the encoder's state tensors is a copy as far as
        # values and gradients go.
        steps: list[Tensor] = []
        for _ in range(self.config.out_frames):
            x = None
            layer_hidden: list[Tensor] = []
            for layer, cell in enumerate(forecaster):
                x, states[layer] = cell(x, states[layer], *where)
                assert x is not None
                layer_hidden.append(x)
            steps.append(torch.cat(layer_hidden, dim=1))
        return torch.stack(steps, dim=1)

    def forecast_states(self, frames: Tensor, origin: tuple[int, int] | None = None) -> Tensor:
        """Space-to-depth of checked ``frames`` (B, in, H, W), then `encode_forecast`.

        Returns ``(B * out_frames, sum(hidden), H / p, W / p)``: the forecaster's states of
        every step, ready for a 1 x 1 head over all steps at once.
        """
        c = self.config
        patches = [
            F.pixel_unshuffle(frames[:, t : t + 1], c.patch_size) for t in range(c.in_frames)
        ]
        grid_origin = (
            None if origin is None else (origin[0] // c.patch_size, origin[1] // c.patch_size)
        )
        return self.encode_forecast(patches, grid_origin).flatten(0, 1)

    @torch.no_grad()
    def predict(self, frames: Tensor) -> Tensor:
        """Forecast grey levels in [0, 1] (sigmoid of ``forward``, float32, no gradients).

        Args:
            frames: ``(B, in_frames, frame_cells, frame_cells)`` grey levels in [0, 1].

        Returns:
            ``(B, out_frames, frame_cells, frame_cells)`` float32 grey in [0, 1].
        """
        logits: Tensor = self(frames)
        return torch.sigmoid(logits.float())


def crop_fits(
    size: tuple[int, ...], origin: tuple[int, int], patch_size: int, frame_cells: int
) -> bool:
    """Whether a crop of ``size`` (rows, columns) frame cells at ``origin`` fits the frame.

    Corner and sides must be multiples of the patch size (the cells step on whole patches)
    and the crop must lie inside the ``frame_cells`` square.
    """
    p, n = patch_size, frame_cells
    return all(
        o % p == 0 and s % p == 0 and o >= 0 and s >= p and o + s <= n
        for o, s in zip(origin, size, strict=True)
    )


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters (weights and biases) in ``model``."""
    return sum(p.numel() for p in model.parameters())
