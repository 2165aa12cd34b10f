"""Validation of the Lagrangian ConvLSTM as served: the validation windows forecast (network,
then each lead moved along the motion field) and scored against the observed frames."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ingest.normalize import NormParams
from model.advection.lagrangian import to_eulerian
from model.nets.network import FrameSequenceNetwork
from model.training.lagrangian_data import LagrangianWindows
from model.verification.scores import ScoreAccumulator, grey_to_mmh


@dataclass(frozen=True)
class ValidationSet:
    """Validation windows as served: Lagrangian inputs, motion and the observed targets."""

    inputs: np.ndarray  # (N, in, H, W) float32 grey, Lagrangian
    velocity: np.ndarray  # (N, 2, H, W)
    observed: np.ndarray  # (N, out, H, W) float32 grey, Eulerian


def validation_set(windows: list[LagrangianWindows]) -> ValidationSet:
    """The validation views' windows stacked into one `ValidationSet`."""
    return ValidationSet(
        np.concatenate([w.inputs for w in windows]).astype(np.float32),
        np.concatenate([w.velocity for w in windows]),
        np.concatenate([w.observed for w in windows]).astype(np.float32),
    )


def validate(
    model: FrameSequenceNetwork,
    data: ValidationSet,
    norm: NormParams,
    device: torch.device,
    inflow: str = "zero",
    batch_size: int = 16,
) -> tuple[float, dict[str, Any]]:
    """(CSI score, pooled scores) of the model as served on the validation windows.

    The score is the mean of the 15-lead mean CSI at 0.5 and at 2 mm/h (`selection_score`);
    ``inflow``: the model's (`model.nets.config.NetworkConfig.inflow`).
    """
    model.eval()

    def forecast(inputs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(inputs).to(device)).float().cpu().numpy()

    return validate_forecast(forecast, data, norm, inflow, batch_size)


def zero_start(data: ValidationSet, norm: NormParams, inflow: str) -> tuple[float, dict[str, Any]]:
    """`validate` of a network that changes nothing (the last input at every lead): the
    extrapolation nowcast with the given ``inflow``, the reference a run must not fall below."""
    out_frames = data.observed.shape[1]
    return validate_forecast(
        lambda x: np.repeat(x[:, -1:], out_frames, axis=1), data, norm, inflow, 16
    )


def validate_forecast(
    forecast: Callable[[np.ndarray], np.ndarray],
    data: ValidationSet,
    norm: NormParams,
    inflow: str,
    batch_size: int,
) -> tuple[float, dict[str, Any]]:
    """`validate` of ``forecast``: (N, in, H, W) Lagrangian inputs -> (N, out, H, W) grey."""
    scores = ScoreAccumulator(data.observed.shape[1])
    for i in range(0, len(data.inputs), batch_size):
        lagrangian = forecast(data.inputs[i : i + batch_size])
        moved = np.stack(
            [
                to_eulerian(f, v, inflow=inflow)
                for f, v in zip(lagrangian, data.velocity[i : i + batch_size], strict=True)
            ]
        )
        scores.add(grey_to_mmh(moved, norm), grey_to_mmh(data.observed[i : i + batch_size], norm))
    pooled = scores.scores()
    return selection_score(pooled), pooled


def mean_csi(pooled: dict[str, Any], threshold: str) -> float:
    """15-lead mean of the pooled CSI at ``threshold`` (a key like "2.0"; undefined leads 0)."""
    return float(np.mean([v or 0.0 for v in pooled["csi"][threshold]]))


def selection_score(pooled: dict[str, Any]) -> float:
    """Mean over 0.5 and 2 mm/h of the mean CSI over the leads (undefined leads count 0)."""
    return float(np.mean([mean_csi(pooled, t) for t in ("0.5", "2.0")]))


def mean_rain_mse(pooled: dict[str, Any]) -> float:
    """The 15-lead mean of the pooled rain MSE (mm2/h2)."""
    return float(np.mean([v or 0.0 for v in pooled["rain_mse"]]))
