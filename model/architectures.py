"""The networks of the method's family, by name: one registry, one builder.

``build_model(config)`` builds the network ``config.architecture`` names; ``default_config``
gives each architecture's defaults (the radar set-up of METHOD.md), which the trainer and
the model card use. A checkpoint stores its config, so it rebuilds the right network.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Any

from model.config import ARCHITECTURES, ConvLSTMConfig
from model.network import FrameSequenceNetwork

# Defaults that differ from ConvLSTMConfig's own per architecture.
_DEFAULTS: dict[str, dict[str, Any]] = {
    # sized for two CPU cores (docs/benchmarks.md, "Training"): a 25 x 25 grid of 4 x 4
    # patches and 2 x 32 states; the inputs already moved with the rain, the network only
    # has to learn growth, decay and smoothing
    "convlstm": {"patch_size": 4, "hidden_channels": (32, 32)},
    "eulerian-convlstm": {},
    # queries and keys as wide as the values: the fused attention kernels need equal widths
    # (on CPU the fallback holds the 2,500 x 2,500 weights per step and is 2 x slower)
    "saconvlstm": {"attention_channels": 64},
    # sized to about the ConvLSTM's weight count: 25 x 25 pooled inputs, 2 x 256 units
    "fclstm": {"patch_size": 4, "hidden_channels": (256, 256)},
}

# name -> "module:class" of the network, imported when built
_NETWORKS: dict[str, str] = {
    "convlstm": "model.lagrangian_net:LagrangianForecaster",
    "eulerian-convlstm": "model.convlstm:EncoderForecaster",
    "saconvlstm": "model.convlstm:EncoderForecaster",
    "fclstm": "model.fclstm:FCEncoderForecaster",
}

LAGRANGIAN = frozenset({"convlstm"})
"""Architectures that read inputs moved with the rain and forecast in Lagrangian coordinates."""


def default_config(architecture: str, **overrides: Any) -> ConvLSTMConfig:
    """The defaults of ``architecture`` with ``overrides`` (None values ignored)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}; valid: {', '.join(ARCHITECTURES)}"
        )
    values = {**_DEFAULTS[architecture], **{k: v for k, v in overrides.items() if v is not None}}
    return replace(ConvLSTMConfig(), architecture=architecture, **values)


def build_model(config: ConvLSTMConfig) -> FrameSequenceNetwork:
    """A freshly initialised network for ``config`` (on CPU, float32)."""
    module_name, _, attribute = _NETWORKS[config.architecture].partition(":")
    network: FrameSequenceNetwork = getattr(importlib.import_module(module_name), attribute)(config)
    return network
