"""The Lagrangian ConvLSTM's trainer: losses in Lagrangian coordinates, selection on the
validation CSI in the observed (Eulerian) frame, and runs that resume across sittings.

- Loss (`model.lagrangian_losses`): taken against the targets moved into Lagrangian
  coordinates (L-CNN's way; the motion and the warps are computed once,
  `model.lagrangian_data`), on the cells whose trajectory stayed inside the grid, or against
  the observed frames after a differentiable warp (``target_frame="eulerian"``).
- Selection: every ``eval_every_min`` the validation windows are forecast as served (network,
  then `model.lagrangian.to_eulerian`) and scored against the observed frames; the score is
  the mean of the pooled CSI at 0.5 and 2 mm/h over the 15 leads, and the best weights so far
  whose validation rain MSE is no worse than the zero start's (the extrapolation nowcast's)
  are written as the shipped-format checkpoint (weights, config, meta).
- Resume: the whole state (weights, optimiser, both random generators, step, samples seen,
  best score, history, sittings) goes to a resumable file at every evaluation and on SIGTERM;
  ``resume`` continues exactly from it. Loaded with ``torch.load(weights_only=True)``: tensors
  and plain values only, nothing unpickled.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ingest.normalize import NormParams
from model import advection_torch
from model.checkpoint import save_checkpoint
from model.config import ConvLSTMConfig
from model.evaluate import grey_to_mmh
from model.hardware import describe_machine
from model.lagrangian import to_eulerian
from model.lagrangian_data import LagrangianWindows
from model.lagrangian_losses import LOSS_TERMS, SOFT_CSI_GREYS, build_loss
from model.network import FrameSequenceNetwork
from model.scores import ScoreAccumulator
from model.train import dihedral, resolve_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LagrangianTrainConfig:
    """Every choice of a run; recorded in the checkpoint and the model card."""

    learning_rate: float = 1e-3
    batch_size: int = 8
    max_minutes: float = 60.0  # this sitting's wall-clock budget
    max_steps: int | None = None  # stop once the run (all sittings) has taken this many steps
    eval_every_min: float = 5.0
    loss: str = "soft_csi+mse+rain_mse"
    soft_csi_mmh: tuple[float, ...] = (0.5, 2.0)
    rain_mse_weight: float = 0.2
    augment: bool = True  # the 8 flips/rotations, the same for the whole window
    seed: int = 0
    device: str = "auto"
    optimizer: str = "adam"
    target_frame: str = "lagrangian"  # or "eulerian": a differentiable warp before the loss

    def __post_init__(self) -> None:
        unknown = [t for t in self.loss.split("+") if t not in LOSS_TERMS]
        if unknown:
            raise ValueError(
                f"unknown loss terms {unknown} in {self.loss!r}; valid terms, joined by '+': "
                f"{', '.join(LOSS_TERMS)}"
            )
        if self.target_frame not in ("lagrangian", "eulerian"):
            raise ValueError(
                f"target_frame must be lagrangian or eulerian, got {self.target_frame!r}"
            )
        bad = [t for t in self.soft_csi_mmh if t not in SOFT_CSI_GREYS]
        if bad:
            raise ValueError(f"soft CSI thresholds {bad} mm/h: valid {list(SOFT_CSI_GREYS)}")


@dataclass
class TrainState:
    """What a sitting leaves for the next one. ``reference_rain_mse``: the validation rain MSE
    of the zero start (the extrapolation nowcast); a model is kept only at or below it."""

    reference_rain_mse: float | None = None
    step: int = 0
    samples_seen: int = 0
    best_score: float = -1.0
    best_step: int = -1
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    sittings: list[dict[str, Any]] = field(default_factory=list)


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
    batch_size: int = 16,
) -> tuple[float, dict[str, Any]]:
    """(CSI score, pooled scores) of the model as served on the validation windows.

    The score is the mean of the 15-lead mean CSI at 0.5 and at 2 mm/h (`selection_score`).
    """
    model.eval()
    scores = ScoreAccumulator(data.observed.shape[1])
    with torch.no_grad():
        for i in range(0, len(data.inputs), batch_size):
            lag = model(torch.from_numpy(data.inputs[i : i + batch_size]).to(device))
            lag_np = lag.float().cpu().numpy()
            forecast = np.stack(
                [
                    to_eulerian(f, v)
                    for f, v in zip(lag_np, data.velocity[i : i + batch_size], strict=True)
                ]
            )
            scores.add(
                grey_to_mmh(forecast, norm), grey_to_mmh(data.observed[i : i + batch_size], norm)
            )
    pooled = scores.scores()
    return selection_score(pooled), pooled


def selection_score(pooled: dict[str, Any]) -> float:
    """Mean over 0.5 and 2 mm/h of the mean CSI over the leads (undefined leads count 0)."""
    means = []
    for threshold in ("0.5", "2.0"):
        values = [v if v is not None else 0.0 for v in pooled["csi"][threshold]]
        means.append(float(np.mean(values)))
    return float(np.mean(means))


def mean_rain_mse(pooled: dict[str, Any]) -> float:
    """The 15-lead mean of the pooled rain MSE (mm2/h2)."""
    return float(np.mean([v or 0.0 for v in pooled["rain_mse"]]))


def dihedral_vectors(vectors: np.ndarray, k: int) -> np.ndarray:
    """A (2, H, W) field of (x, y) vectors under `model.train.dihedral` symmetry ``k``.

    The maps move like any field; the components turn with the grid: a quarter turn
    (``np.rot90`` on rows, columns) takes (dx, dy) to (dy, -dx), the flip of columns
    (dx, dy) to (-dx, dy).
    """
    out = dihedral(vectors, k)
    dx, dy = out[0], out[1]
    for _ in range(k % 4):
        dx, dy = dy, -dx
    if k >= 4:
        dx = -dx
    return np.stack([dx, dy])


@dataclass(frozen=True)
class Batch:
    """inputs (B, in, H, W); targets and inside (B, out, H, W) in Lagrangian coordinates;
    velocity (B, 2, H, W) and observed (B, out, H, W), the targets as observed."""

    inputs: Tensor
    targets: Tensor
    inside: Tensor
    velocity: Tensor
    observed: Tensor

    def to(self, device: torch.device) -> Batch:
        return Batch(*(getattr(self, f.name).to(device) for f in fields(self)))


def sample_batch(
    train: list[LagrangianWindows], batch_size: int, rng: np.random.Generator, augment: bool
) -> Batch:
    """A random batch of windows (each view weighted by its window count), each under one of
    the 8 symmetries of the grid when ``augment``."""
    sizes = np.array([len(w.starts) for w in train])
    views = rng.choice(len(train), size=batch_size, p=sizes / sizes.sum())
    parts: list[list[np.ndarray]] = [[], [], [], [], []]
    for v in views:
        i = int(rng.integers(sizes[v]))
        w = train[v]
        fields = [w.inputs[i], w.targets[i], w.inside[i], w.velocity[i], w.observed[i]]
        if augment:
            k = int(rng.integers(8))
            fields = [dihedral(f, k) for f in fields[:3]] + [
                dihedral_vectors(fields[3], k),
                dihedral(fields[4], k),
            ]
        for part, f in zip(parts, fields, strict=True):
            part.append(np.ascontiguousarray(f, dtype=bool if f.dtype == bool else np.float32))
    return Batch(*(torch.from_numpy(np.stack(p)) for p in parts))


def batch_loss(
    model: torch.nn.Module,
    batch: Batch,
    loss_fn: Callable[[Tensor, Tensor, Tensor], Tensor],
    target_frame: str,
) -> Tensor:
    """The loss of a batch: against the targets moved into Lagrangian coordinates (L-CNN), or
    against the observed frames after moving each lead's output along the motion with a
    differentiable semi-Lagrangian warp (``target_frame="eulerian"``, LUPIN's way)."""
    out = model(batch.inputs)
    if target_frame == "lagrangian":
        return loss_fn(out, batch.targets, batch.inside)
    displacements = advection_torch.lead_displacements(batch.velocity, out.shape[1])
    moved = advection_torch.warp(out, displacements).to(out.dtype)
    return loss_fn(moved, batch.observed, advection_torch.inside(displacements))


def make_optimizer(model: torch.nn.Module, config: LagrangianTrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=config.learning_rate, alpha=0.9)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; valid: adam, rmsprop")


def save_resumable(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    state: TrainState,
    extra: dict[str, Any],
) -> None:
    """Write the whole training state atomically (tensors and plain values only)."""
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": json.dumps(rng.bit_generator.state),
        "state": json.dumps(asdict(state)),
        "extra": json.dumps(extra, default=str),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(path)


def load_resumable(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> tuple[TrainState, dict[str, Any]]:
    """Restore what `save_resumable` wrote into ``model``, ``optimizer`` and ``rng``."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    torch.set_rng_state(payload["torch_rng"])
    rng.bit_generator.state = json.loads(payload["numpy_rng"])
    state = TrainState(**json.loads(payload["state"]))
    return state, json.loads(payload["extra"])


class StopFlag:
    """Set by SIGTERM/SIGINT: the loop saves its state and returns at the next step."""

    def __init__(self) -> None:
        self.set = False

    def install(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            log.info("signal %d: saving the resumable state and stopping", signum)
            self.set = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, handler)


def train_lagrangian(
    model: FrameSequenceNetwork,
    model_config: ConvLSTMConfig,
    config: LagrangianTrainConfig,
    train: list[LagrangianWindows],
    validation: ValidationSet,
    norm: NormParams,
    out_path: Path,
    resume_path: Path,
    meta: dict[str, Any],
    resume: bool = False,
    stop: StopFlag | None = None,
) -> TrainState:
    """Train for ``config.max_minutes`` (this sitting), keep the best weights at ``out_path``.

    With ``resume`` the state at ``resume_path`` is restored first; the state is written there
    at every evaluation and when ``stop`` is set.
    """
    device = resolve_device(config.device)
    model = model.to(device)
    optimizer = make_optimizer(model, config)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    state = TrainState()
    if resume:
        state, _ = load_resumable(resume_path, model, optimizer, rng)
        log.info("resumed at step %d (%d samples)", state.step, state.samples_seen)
    loss_fn = build_loss(config.loss, config.soft_csi_mmh, config.rain_mse_weight)
    sitting = {
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "from_step": state.step,
        "hardware": describe_machine(),
    }
    state.sittings.append(sitting)
    started = time.monotonic()
    seconds_before = state.seconds
    next_eval = started + config.eval_every_min * 60
    budget_end = started + config.max_minutes * 60
    running, batches = 0.0, 0

    def checkpoint_now() -> None:
        nonlocal running, batches
        score, pooled = validate(model, validation, norm, device)
        state.seconds = seconds_before + time.monotonic() - started
        entry = {
            "step": state.step,
            "samples_seen": state.samples_seen,
            "minutes": round(state.seconds / 60, 2),
            "train_loss": running / max(batches, 1),
            "validation_score": score,
            "validation_csi_0_5": float(np.mean([v or 0.0 for v in pooled["csi"]["0.5"]])),
            "validation_csi_2": float(np.mean([v or 0.0 for v in pooled["csi"]["2.0"]])),
        }
        entry["validation_rain_mse"] = mean_rain_mse(pooled)
        if state.step == 0 and state.reference_rain_mse is None:
            state.reference_rain_mse = entry["validation_rain_mse"]
        eligible = (
            state.reference_rain_mse is None
            or entry["validation_rain_mse"] <= state.reference_rain_mse
        )
        entry["eligible"] = eligible
        state.history.append(entry)
        running, batches = 0.0, 0
        log.info(
            "step %(step)d samples %(samples_seen)d loss %(train_loss).4f "
            "val CSI(0.5) %(validation_csi_0_5).3f CSI(2) %(validation_csi_2).3f "
            "rain MSE %(validation_rain_mse).3f",
            entry,
        )
        sitting["to_step"] = state.step
        if eligible and score > state.best_score:
            state.best_score, state.best_step = score, state.step
            save_checkpoint(
                out_path,
                model,
                model_config,
                {
                    **meta,
                    "normalisation": {**asdict(norm), "version": norm.version},
                    "train_config": asdict(config),
                    "step": state.step,
                    "samples_seen": state.samples_seen,
                    "training_minutes": round(state.seconds / 60, 1),
                    "validation": {"score": score, "scores": pooled},
                    "device": str(device),
                    "hardware": describe_machine(),
                    "sittings": state.sittings,
                },
            )
        save_resumable(resume_path, model, optimizer, rng, state, {"meta": meta})

    if state.step == 0:
        checkpoint_now()  # the zero start: the extrapolation nowcast's validation score
    while True:
        model.train()
        batch = sample_batch(train, config.batch_size, rng, config.augment).to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = batch_loss(model, batch, loss_fn, config.target_frame)
        loss.backward()
        optimizer.step()
        running += float(loss.detach())
        batches += 1
        state.step += 1
        state.samples_seen += len(batch.inputs)
        now = time.monotonic()
        if stop is not None and stop.set:
            checkpoint_now()
            break
        if now >= budget_end or (config.max_steps is not None and state.step >= config.max_steps):
            checkpoint_now()
            break
        if now >= next_eval:
            checkpoint_now()
            next_eval = time.monotonic() + config.eval_every_min * 60
    return state
