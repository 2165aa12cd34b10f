"""The trained networks as nowcast methods (CUDA when present, else CPU): every architecture
of the registry (`model.nets.architectures`) by its name, each from its checkpoint
``model/checkpoints/NAME.safetensors``: `LearnedMethod` for the Eulerian networks,
`LagrangianConvLSTMMethod` for ``convlstm``.

By default the network's grey levels go through the checkpoint's per-lead calibration
(`model.verification.calibration`, fitted by ``nowcast calibrate`` on the training windows) when the
checkpoint holds one marked for use; ``calibrated=False`` gives the raw network output.
``meta["calibration_applied"]`` says which it is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from model.advection import advection_torch
from model.advection.motion import motion_field
from model.methods import check_inputs
from model.nets.checkpoint import load_checkpoint, read_config
from model.nets.residual_gate import apply_residual_gate, stored_gate
from model.paths import default_checkpoint
from model.verification.calibration import LeadCalibration, apply_calibration, cap_at_inputs

log = logging.getLogger(__name__)


class LearnedMethod:
    """``method(inputs_grey (B, 5, 100, 100), n_leads <= 15) -> (B, n_leads, 100, 100)`` grey.

    Loads the checkpoint once (weights only, no pickle); runs batches of sites at once.
    ``architecture``: the registry's name (`model.nets.architectures`), which is also the method's.
    ``checkpoint``: None for the shipped one of this method; a checkpoint of another
    architecture is refused. ``calibrated``: apply the checkpoint's calibration when it holds
    one marked for use. Subclasses say how the network turns inputs into forecasts
    (`network_grey`).
    """

    def __init__(
        self,
        architecture: str = "eulerian-convlstm",
        checkpoint: Path | None = None,
        device: str = "auto",
        bf16: bool = False,
        calibrated: bool = True,
    ) -> None:
        self.name = architecture
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
        out = self.network_grey(inputs)[:, :n_leads]
        if self.calibration is None:
            return out
        return cap_at_inputs(apply_calibration(out, self.calibration), inputs)

    def run_network(self, x: np.ndarray) -> np.ndarray:
        """The network on float32 (B, in, H, W) inputs: its output as float32 numpy."""
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16),
        ):
            out = self.model(torch.from_numpy(x).to(self.device)).float()
        return out.cpu().numpy().astype(np.float32, copy=False)

    def network_grey(self, inputs: np.ndarray) -> np.ndarray:
        """(B, out_frames, H, W) grey in [0, 1]: the sigmoid of the network's logits."""
        logits = torch.from_numpy(self.run_network(inputs))
        return torch.sigmoid(logits).numpy().astype(np.float32, copy=False)


class LagrangianConvLSTMMethod(LearnedMethod):
    """The Lagrangian ConvLSTM (`model.nets.lagrangian_net`), the served ``convlstm``.

    Per site: the shared motion field of the inputs (`model.advection.motion.motion_field`, the one
    extrapolation uses); then for the whole batch at once (`model.advection.advection_torch`) the
    inputs moved to the issue time, the network's Lagrangian forecast of every lead, each lead
    moved k steps along the motion (what `model.advection.lagrangian.to_eulerian` does per site in
    numpy), a trajectory from beyond the grid reading the network's field as the checkpoint's
    ``inflow`` says ("edge": its nearest boundary cell). A network that outputs the last frame
    unchanged gives the extrapolation nowcast to rounding (with "edge" inflow: wherever the
    trajectory stays inside the grid).

    The checkpoint's residual gate (`model.nets.residual_gate`: how much of the network's
    change to the last frame each lead keeps, selected on the cross-validation folds) is part
    of the served forecast: it applies when the checkpoint holds one marked for use, before
    any calibration (``calibrated=False`` leaves it on); ``gated=False`` gives the network as
    trained. ``meta["residual_gate_applied"]`` says whether it did.
    """

    def __init__(self, architecture: str = "convlstm", gated: bool = True, **options: Any) -> None:
        super().__init__(architecture, **options)
        self.residual_gate = stored_gate(self.meta, self.config.out_frames) if gated else None
        self.meta["residual_gate_applied"] = self.residual_gate is not None

    def network_grey(self, inputs: np.ndarray) -> np.ndarray:
        c = self.config
        inputs = np.nan_to_num(inputs, nan=0.0)  # outside coverage: no echo
        velocity = torch.from_numpy(np.stack([motion_field(frames) for frames in inputs]))
        steps = max(c.in_frames - 1, c.out_frames)
        displacements = advection_torch.lead_displacements(velocity, steps)  # (B, S, 2, H, W)
        # input j steps before the issue time moved j steps forward; the last one unchanged
        back = c.in_frames - 1
        earlier = torch.from_numpy(inputs[:, :back])
        moved = advection_torch.warp(earlier, displacements[:, :back].flip(1))
        frames = torch.cat([moved, torch.from_numpy(inputs[:, back:])], dim=1)
        lagrangian = frames.clamp(0.0, 1.0).float().numpy()
        fields = self.run_network(lagrangian)
        if self.residual_gate is not None:
            fields = apply_residual_gate(fields, lagrangian[:, -1], self.residual_gate)
        leads = advection_torch.warp(
            torch.from_numpy(fields), displacements[:, : c.out_frames], c.inflow
        )
        return leads.clamp(0.0, 1.0).float().numpy()


def learned_method(checkpoint: Path, **options: Any) -> LearnedMethod:
    """The method of whichever architecture the checkpoint holds, built with ``options``."""
    from model.methods import get_method

    name = read_config(checkpoint).architecture
    return cast(LearnedMethod, get_method(name, checkpoint=checkpoint, **options))
