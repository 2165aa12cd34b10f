"""The trained networks as nowcast methods (CUDA when present, else CPU): ``convlstm``,
``saconvlstm`` and ``fclstm``, each from its checkpoint ``model/checkpoints/NAME.safetensors``.

By default the network's grey levels go through the checkpoint's per-lead calibration
(`model.calibration`, fitted by ``nowcast calibrate`` on the training windows) when the
checkpoint holds one marked for use; ``calibrated=False`` gives the raw network output.
``meta["calibration_applied"]`` says which it is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from model.calibration import LeadCalibration, apply_calibration, cap_at_inputs
from model.checkpoint import load_checkpoint, read_config
from model.methods import check_inputs
from model.paths import default_checkpoint

log = logging.getLogger(__name__)


class ConvLSTMMethod:
    """``method(inputs_grey (B, 5, 100, 100), n_leads <= 15) -> (B, n_leads, 100, 100)`` grey.

    Loads the checkpoint once (weights only, no pickle); runs batches of sites at once.
    ``checkpoint``: None for the shipped one of this method; a checkpoint of another
    architecture is refused. ``calibrated``: apply the checkpoint's calibration when it holds
    one marked for use.
    """

    name: str = "convlstm"

    def __init__(
        self,
        checkpoint: Path | None = None,
        device: str = "auto",
        bf16: bool = False,
        calibrated: bool = True,
    ) -> None:
        resolved = "cuda" if device == "auto" and torch.cuda.is_available() else device
        self.device = torch.device("cpu" if resolved == "auto" else resolved)
        checkpoint = Path(checkpoint) if checkpoint else default_checkpoint(self.name)
        self.model, self.config, self.meta = load_checkpoint(checkpoint, device=str(self.device))
        if self.config.architecture != self.name:
            raise ValueError(
                f"{checkpoint} holds a {self.config.architecture} network, not {self.name}"
            )
        self.model.eval()
        self.bf16 = bf16
        stored = self.meta.get("calibration") or {}
        self.calibration: LeadCalibration | None = None
        if calibrated and stored.get("use"):
            self.calibration = LeadCalibration.from_dict(stored)
            if self.calibration.leads != self.config.out_frames:
                raise ValueError(
                    f"{checkpoint}: calibration for {self.calibration.leads} leads, "
                    f"the model forecasts {self.config.out_frames}"
                )
        elif calibrated:
            log.warning(
                "%s: no calibration marked for use (%s); forecasts are the raw network output",
                checkpoint,
                "not fitted: run nowcast calibrate" if not stored else "it did not help",
            )
        self.meta["calibration_applied"] = self.calibration is not None

    def __call__(self, inputs_grey: np.ndarray, n_leads: int) -> np.ndarray:
        inputs = check_inputs(inputs_grey, n_leads)
        c = self.config
        if inputs.shape[1:] != (c.in_frames, c.frame_cells, c.frame_cells):
            raise ValueError(
                f"the model reads (B, {c.in_frames}, {c.frame_cells}, {c.frame_cells}), "
                f"got {inputs.shape}"
            )
        if n_leads > c.out_frames:
            raise ValueError(f"the model forecasts {c.out_frames} leads, asked for {n_leads}")
        x = torch.from_numpy(inputs).to(self.device)
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16),
        ):
            grey = torch.sigmoid(self.model(x).float())
        out = grey[:, :n_leads].cpu().numpy().astype(np.float32, copy=False)
        if self.calibration is None:
            return out
        return cap_at_inputs(apply_calibration(out, self.calibration), inputs)


class SAConvLSTMMethod(ConvLSTMMethod):
    """The Self-Attention ConvLSTM (`model.sa_cell`), same interface and wiring."""

    name = "saconvlstm"


class FCLSTMMethod(ConvLSTMMethod):
    """The fully connected LSTM baseline (`model.fclstm`), same interface."""

    name = "fclstm"


def learned_method(checkpoint: Path, **options: Any) -> ConvLSTMMethod:
    """The method of whichever architecture the checkpoint holds, built with ``options``."""
    from model.methods import get_method

    name = read_config(checkpoint).architecture
    return cast(ConvLSTMMethod, get_method(name, checkpoint=checkpoint, **options))
