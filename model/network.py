"""What every network of the family shares: the frame check, the encoder-forecaster loop and
``predict``.

A network maps ``(B, in_frames, H, W)`` grey levels in [0, 1] (oldest first) to
``(B, out_frames, H, W)`` logits (lead 1 first); ``predict`` is their sigmoid.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from model.config import ConvLSTMConfig


class FrameSequenceNetwork(nn.Module):
    """Base of the encoder-forecasters; subclasses set ``config``, the ``encoder`` and
    ``forecaster`` cell stacks (`nn.ModuleList`) and define ``forward``."""

    config: ConvLSTMConfig
    encoder: nn.ModuleList
    forecaster: nn.ModuleList

    def check_frames(self, frames: Tensor) -> Tensor:
        """``frames`` validated and cast to the weights' dtype; ValueError on a wrong shape."""
        c = self.config
        expected = (c.in_frames, c.frame_cells, c.frame_cells)
        if frames.ndim != 4 or tuple(frames.shape[1:]) != expected:
            raise ValueError(
                f"frames must be (B, {c.in_frames}, {c.frame_cells}, {c.frame_cells}), "
                f"got {tuple(frames.shape)}"
            )
        if not frames.is_floating_point():
            raise ValueError(f"frames must be floating-point grey levels, got {frames.dtype}")
        return frames.to(next(self.parameters()).dtype)

    def encode_forecast(self, inputs: list[Tensor]) -> Tensor:
        """Run the ``encoder`` stack over ``inputs``, then the ``forecaster`` stack.

        The forecaster's layer ``l`` starts from the encoder's layer ``l`` final state and has
        no input on its first layer (the paper's wiring); a cell is called as
        ``cell(x or None, state or None) -> (hidden, state)``.

        Args:
            inputs: one tensor per input step, ``(B, ...)`` as the first encoder cell reads it.

        Returns:
            ``(B, out_frames, sum(hidden), ...)``: per forecast step, the hidden states of
            all forecaster layers concatenated on dimension 1.
        """
        encoder: nn.ModuleList = self.encoder
        forecaster: nn.ModuleList = self.forecaster
        states: list[Any] = [None] * len(encoder)
        for step_input in inputs:
            x: Tensor | None = step_input
            for layer, cell in enumerate(encoder):
                x, states[layer] = cell(x, states[layer])
        # No in-place ops anywhere: sharing the encoder's state tensors is a copy as far as
        # values and gradients go.
        steps: list[Tensor] = []
        for _ in range(self.config.out_frames):
            x = None
            layer_hidden: list[Tensor] = []
            for layer, cell in enumerate(forecaster):
                x, states[layer] = cell(x, states[layer])
                assert x is not None
                layer_hidden.append(x)
            steps.append(torch.cat(layer_hidden, dim=1))
        return torch.stack(steps, dim=1)

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


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters (weights and biases) in ``model``."""
    return sum(p.numel() for p in model.parameters())
