"""The networks of the method's family: one registry, asked by everything else.

Each `Architecture` says, by name, how its network is built (``network``), which cells it
stacks (``cell``), which nowcast method serves it (``method``), its defaults (the radar set-up
of METHOD.md), whether it works in Lagrangian coordinates, and how the model card and the
NetCDF ``source`` describe it. ``build_model(config)`` builds the network ``config.architecture``
names; ``default_config`` gives an architecture's defaults. A checkpoint stores its config, so
it rebuilds the right network. Importing this module loads neither torch nor pysteps.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from model.nets.config import NetworkConfig

if TYPE_CHECKING:
    from model.nets.network import FrameSequenceNetwork

PAPER = (
    "Shi et al. (2015), Convolutional LSTM Network: A Machine Learning Approach for "
    "Precipitation Nowcasting, NIPS 2015, arXiv:1506.04214"
)


@dataclass(frozen=True)
class Architecture:
    """One network of the family.

    ``network`` and ``method``: "module:attribute" of the network class and of the nowcast
    method class, imported when used. ``cell``: ``convlstm``, ``saconvlstm`` or ``lstm``
    (fully connected). ``shape``: the model card's description, formatted with the config's
    fields, ``grid`` (cells a side after the patches), ``values`` (grid cells) and ``layers``.
    """

    name: str
    network: str
    method: str
    cell: str
    lagrangian: bool
    reference: str
    shape: str
    defaults: dict[str, Any] = field(default_factory=dict)

    def describe(self, config: dict[str, Any]) -> str:
        grid = config["frame_cells"] // config["patch_size"]
        layers = len(config["hidden_channels"])
        return self.shape.format(grid=grid, values=grid**2, layers=layers, **config)


_REGISTRY: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            name="convlstm",
            network="model.nets.lagrangian_net:LagrangianForecaster",
            method="model.methods.convlstm:LagrangianConvLSTMMethod",
            cell="convlstm",
            lagrangian=True,
            reference=(
                "Lagrangian encoder-forecaster ConvLSTM: growth, decay and smoothing learned "
                "in coordinates moving with the rain (after Ritvanen et al. 2023, L-CNN, IEEE "
                f"JSTARS 16), on the pysteps Lucas-Kanade motion; wiring of {PAPER}"
            ),
            shape=(
                "the paper's encoder-forecaster on inputs moved with the rain ({grid} x {grid} "
                "grid, {hidden_channels} states, {kernel_size} x {kernel_size} kernels); per "
                "lead a growth map and 4 rain-rate blur weights, then moved along the motion"
            ),
            # sized for two CPU cores (docs/benchmarks.md): a 25 x 25 grid of 4 x 4 patches
            # and 2 x 32 states; the network only has to learn growth, decay and smoothing;
            # rain from beyond the grid flows in from its edge (model.advection.motion)
            defaults={"patch_size": 4, "hidden_channels": (32, 32), "inflow": "edge"},
        ),
        Architecture(
            name="eulerian-convlstm",
            network="model.nets.convlstm:EncoderForecaster",
            method="model.methods.convlstm:LearnedMethod",
            cell="convlstm",
            lagrangian=False,
            reference=f"encoder-forecaster ConvLSTM as published: {PAPER}",
            shape=(
                "the paper's encoder-forecaster ConvLSTM as published ({grid} x {grid} grid, "
                "{hidden_channels} states, {kernel_size} x {kernel_size} kernels, "
                "depth-to-space output, cross-entropy on grey levels)"
            ),
        ),
        Architecture(
            name="saconvlstm",
            network="model.nets.convlstm:EncoderForecaster",
            method="model.methods.convlstm:LearnedMethod",
            cell="saconvlstm",
            lagrangian=False,
            reference=(
                "encoder-forecaster Self-Attention ConvLSTM: Lin et al. (2020), Self-Attention "
                f"ConvLSTM for Spatiotemporal Prediction, AAAI 2020; wiring of {PAPER}"
            ),
            shape=(
                "as the Eulerian ConvLSTM ({grid} x {grid} grid, {hidden_channels} states, "
                "{kernel_size} x {kernel_size} kernels) plus a self-attention memory per "
                "layer ({attention_channels} query/key channels)"
            ),
            # queries and keys as wide as the values: the fused attention kernels need equal
            # widths (on CPU the fallback holds the 2,500 x 2,500 weights per step)
            defaults={"attention_channels": 64},
        ),
        Architecture(
            name="fclstm",
            network="model.nets.fclstm:FCEncoderForecaster",
            method="model.methods.convlstm:LearnedMethod",
            cell="lstm",
            lagrangian=False,
            reference=f"encoder-forecaster fully connected LSTM, the baseline of {PAPER}",
            shape=(
                "frame average-pooled by {patch_size} and flattened ({values} values), "
                "{layers} fully connected LSTM layers x {hidden_channels} units, bilinear "
                "upsampling of the output"
            ),
            # sized to about the ConvLSTM's weight count: 25 x 25 pooled inputs, 2 x 256 units
            defaults={"patch_size": 4, "hidden_channels": (256, 256)},
        ),
    )
}


def architecture_names() -> tuple[str, ...]:
    """Every registered architecture (each is also a nowcast method of that name)."""
    return tuple(_REGISTRY)


def get_architecture(name: str) -> Architecture:
    """The architecture ``name``; ValueError listing the valid names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; valid: {', '.join(_REGISTRY)}") from None


def default_config(architecture: str, **overrides: Any) -> NetworkConfig:
    """The defaults of ``architecture`` with ``overrides`` (None values ignored)."""
    defaults = get_architecture(architecture).defaults
    values = {**defaults, **{k: v for k, v in overrides.items() if v is not None}}
    return replace(NetworkConfig(), architecture=architecture, **values)


def build_model(config: NetworkConfig) -> FrameSequenceNetwork:
    """A freshly initialised network for ``config`` (on CPU, float32)."""
    module_name, _, attribute = get_architecture(config.architecture).network.partition(":")
    network: FrameSequenceNetwork = getattr(importlib.import_module(module_name), attribute)(config)
    return network
