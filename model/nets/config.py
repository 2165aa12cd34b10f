"""The shape of a network of the method's family, as one frozen dataclass.

Like nanoGPT's ``GPTConfig``: the model is built from this object alone, and a checkpoint
stores it (``to_dict``) so the same network can be rebuilt without unpickling code
(``from_dict``). The defaults are the paper's radar set-up (METHOD.md): 5 input frames,
15 forecast frames of 100 x 100 cells, patch size 2 (50 x 50 x 4 after space-to-depth),
two layers of 64 hidden states, 3 x 3 kernels, peephole terms on.

``architecture`` names the network (`model.nets.architectures`): ``convlstm`` (the Lagrangian
ConvLSTM, `model.nets.lagrangian_net`: the paper's cells and wiring on inputs moved with the rain),
``eulerian-convlstm`` (the paper's network as published), ``saconvlstm`` (ConvLSTM cells with
a self-attention memory, Lin et al. 2020) or ``fclstm`` (the paper's fully connected LSTM
baseline).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from model.advection.motion import check_inflow


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of the encoder-forecaster network.

    in_frames: input frames read by the encoder (oldest first).
    out_frames: forecast frames emitted by the forecaster (lead 1 first).
    frame_cells: frames are square, ``frame_cells x frame_cells`` grid cells.
    patch_size: space-to-depth factor; the ConvLSTM grid is ``frame_cells / patch_size``
        cells on a side with ``patch_size**2`` channels per input frame.
    hidden_channels: hidden-state channels per stacked layer (encoder and forecaster alike).
    kernel_size: odd size of the square input-to-state and state-to-state kernels.
    peephole: whether the cells have the peephole terms ``W_c o C`` of the paper.
    architecture: a name of the registry `model.nets.architectures` (checked when built). For
        ``fclstm`` the frame is average-pooled by ``patch_size`` and flattened
        (``grid_cells**2`` values per step),
        ``hidden_channels`` are the units of each fully connected layer, and the forecast is
        the pooled grid upsampled bilinearly; kernels do not apply.
    state_kernel_size: side of the state-to-state kernels when it differs from the
        input-to-state ``kernel_size`` (the paper's 1 x 1 ablation); None: the same.
    attention_channels: ``saconvlstm`` only: channels of the attention's queries and keys.
    inflow: ``convlstm`` only: what a lead's trajectory from outside the grid reads when the
        forecast is moved along the motion, "zero" (pysteps' extrapolation) or "edge" (the
        nearest boundary cell of the network's field; `model.advection.motion.INFLOWS`).
    """

    in_frames: int = 5
    out_frames: int = 15
    frame_cells: int = 100
    patch_size: int = 2
    hidden_channels: tuple[int, ...] = (64, 64)
    kernel_size: int = 3
    peephole: bool = True
    architecture: str = "eulerian-convlstm"
    state_kernel_size: int | None = None
    attention_channels: int = 16
    inflow: str = "zero"

    def __post_init__(self) -> None:
        for name in (
            "in_frames",
            "out_frames",
            "frame_cells",
            "patch_size",
            "kernel_size",
            "attention_channels",
        ):
            _positive_int(name, getattr(self, name))
        for name in ("kernel_size", "state_kernel_size"):
            size = getattr(self, name)
            if size is not None and (_positive_int(name, size) % 2 == 0):
                raise ValueError(f"{name} must be odd for symmetric 'same' padding, got {size}")
        if self.frame_cells % self.patch_size:
            raise ValueError(
                f"frame_cells ({self.frame_cells}) must be divisible by "
                f"patch_size ({self.patch_size})"
            )
        hidden = self.hidden_channels
        if isinstance(hidden, list):  # JSON gives lists; keep the dataclass hashable
            hidden = tuple(hidden)
            object.__setattr__(self, "hidden_channels", hidden)
        if not isinstance(hidden, tuple) or not hidden:
            raise ValueError(
                f"hidden_channels must be a non-empty tuple of positive ints, got {hidden!r}"
            )
        for i, channels in enumerate(hidden):
            _positive_int(f"hidden_channels[{i}]", channels)
        check_inflow(self.inflow)
        if not isinstance(self.peephole, bool):
            raise ValueError(f"peephole must be a bool, got {self.peephole!r}")

    @property
    def grid_cells(self) -> int:
        """Side of the ConvLSTM grid after space-to-depth, ``frame_cells // patch_size``."""
        return self.frame_cells // self.patch_size

    @property
    def patch_channels(self) -> int:
        """Channels of one frame after space-to-depth, ``patch_size**2``."""
        return self.patch_size**2

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field (``hidden_channels`` as a list)."""
        return {
            "in_frames": self.in_frames,
            "out_frames": self.out_frames,
            "frame_cells": self.frame_cells,
            "patch_size": self.patch_size,
            "hidden_channels": list(self.hidden_channels),
            "kernel_size": self.kernel_size,
            "peephole": self.peephole,
            "architecture": self.architecture,
            "state_kernel_size": self.state_kernel_size,
            "attention_channels": self.attention_channels,
            "inflow": self.inflow,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        """Inverse of `to_dict`; ValueError on unknown keys or invalid values.

        Missing keys take the field defaults.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a NetworkConfig dict is expected, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown NetworkConfig keys {unknown}; valid keys: {sorted(known)}")
        values = dict(data)
        if "hidden_channels" in values and isinstance(values["hidden_channels"], list):
            values["hidden_channels"] = tuple(values["hidden_channels"])
        return cls(**values)
