"""The Lagrangian ConvLSTM's trainer: losses in Lagrangian coordinates, selection on the
validation CSI in the observed (Eulerian) frame, and runs that resume across sittings.

- Loss: taken against the targets moved into Lagrangian coordinates (L-CNN's way; the motion
  and the warps are computed once, `model.lagrangian_data`), on the cells whose trajectory
  stayed inside the grid. `LOSSES` names the choices.
- Selection: every ``eval_every_min`` the validation windows are forecast as served (network,
  then `model.lagrangian.to_eulerian`) and scored against the observed frames; the score is
  the mean of the pooled CSI at 0.5 and 2 mm/h over the 15 leads, and the best weights so far
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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ingest.normalize import NormParams
from model.checkpoint import save_checkpoint
from model.config import ConvLSTMConfig
from model.evaluate import grey_to_mmh
from model.hardware import describe_machine
from model.lagrangian import to_eulerian
from model.lagrangian_data import LagrangianWindows
from model.network import FrameSequenceNetwork
from model.scores import ScoreAccumulator
from model.split import WET_GREYS
from model.train import dihedral, resolve_device

log = logging.getLogger(__name__)

SOFT_CSI_GREYS = (WET_GREYS[2], WET_GREYS[1])
"""Thresholds of the soft CSI: 0.5 and 2 mm/h in grey."""

SOFT_CSI_WIDTH_GREY = 0.02
"""Width of the sigmoid that stands in for the step at a threshold (1.6 dBZ)."""


def masked_mse(out: Tensor, target: Tensor, inside: Tensor) -> Tensor:
    """Mean squared grey error over the cells where ``inside`` (all (B, K, H, W))."""
    weight = inside.float()
    return ((out - target) ** 2 * weight).sum() / weight.sum().clamp_min(1.0)


def soft_csi_loss(out: Tensor, target: Tensor, inside: Tensor) -> Tensor:
    """1 - the CSI of sigmoid-softened exceedances, pooled over the batch, mean over thresholds."""
    weight = inside.float()
    losses = []
    for grey in SOFT_CSI_GREYS:
        forecast = torch.sigmoid((out - grey) / SOFT_CSI_WIDTH_GREY) * weight
        observed = (target >= grey).float() * weight
        hits = (forecast * observed).sum()
        union = forecast.sum() + observed.sum() - hits
        losses.append(1.0 - hits / union.clamp_min(1.0))
    return torch.stack(losses).mean()


LOSSES: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {
    "mse": masked_mse,
    "soft_csi": soft_csi_loss,
    "soft_csi+mse": lambda o, t, m: soft_csi_loss(o, t, m) + 20.0 * masked_mse(o, t, m),
}
"""Loss name -> ``loss(out, target, inside)`` on Lagrangian grey fields."""


@dataclass(frozen=True)
class LagrangianTrainConfig:
    """Every choice of a run; recorded in the checkpoint and the model card."""

    learning_rate: float = 1e-3
    batch_size: int = 8
    max_minutes: float = 60.0  # this sitting's wall-clock budget
    max_steps: int | None = None  # stop once the run (all sittings) has taken this many steps
    eval_every_min: float = 5.0
    loss: str = "soft_csi+mse"
    augment: bool = True  # the 8 flips/rotations, the same for the whole window
    seed: int = 0
    device: str = "auto"
    optimizer: str = "adam"

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; valid: {', '.join(LOSSES)}")


@dataclass
class TrainState:
    """What a sitting leaves for the next one."""

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


def validation_set(windows: list[LagrangianWindows], observed: list[np.ndarray]) -> ValidationSet:
    """Stack the validation views' windows; ``observed[i]`` (N_i, out, H, W) matches view i."""
    return ValidationSet(
        np.concatenate([w.inputs for w in windows]).astype(np.float32),
        np.concatenate([w.velocity for w in windows]),
        np.concatenate(observed).astype(np.float32),
    )


def validate(
    model: FrameSequenceNetwork,
    data: ValidationSet,
    norm: NormParams,
    device: torch.device,
    batch_size: int = 16,
) -> tuple[float, dict[str, Any]]:
    """(selection score, pooled scores) of the model as served on the validation windows.

    The score is the mean of the 15-lead mean CSI at 0.5 and at 2 mm/h.
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


def sample_batch(
    train: list[LagrangianWindows], batch_size: int, rng: np.random.Generator, augment: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """A random batch: inputs (B, in, H, W), targets (B, out, H, W), inside (B, out, H, W)."""
    sizes = np.array([len(w.starts) for w in train])
    views = rng.choice(len(train), size=batch_size, p=sizes / sizes.sum())
    xs, ys, ms = [], [], []
    for v in views:
        i = int(rng.integers(sizes[v]))
        x, y, m = train[v].inputs[i], train[v].targets[i], train[v].inside[i]
        if augment:
            k = int(rng.integers(8))
            x, y, m = dihedral(x, k), dihedral(y, k), dihedral(m, k)
        xs.append(np.ascontiguousarray(x, dtype=np.float32))
        ys.append(np.ascontiguousarray(y, dtype=np.float32))
        ms.append(np.ascontiguousarray(m))
    return (
        torch.from_numpy(np.stack(xs)),
        torch.from_numpy(np.stack(ys)),
        torch.from_numpy(np.stack(ms)),
    )


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
    loss_fn = LOSSES[config.loss]
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
        state.history.append(entry)
        running, batches = 0.0, 0
        log.info(
            "step %(step)d samples %(samples_seen)d loss %(train_loss).4f "
            "val CSI(0.5) %(validation_csi_0_5).3f CSI(2) %(validation_csi_2).3f",
            entry,
        )
        if score > state.best_score:
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
        sitting["to_step"] = state.step
        save_resumable(resume_path, model, optimizer, rng, state, {"meta": meta})

    if state.step == 0:
        checkpoint_now()  # the zero start: the extrapolation nowcast's validation score
    while True:
        model.train()
        x, y, m = sample_batch(train, config.batch_size, rng, config.augment)
        x, y, m = x.to(device), y.to(device), m.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y, m)
        loss.backward()
        optimizer.step()
        running += float(loss.detach())
        batches += 1
        state.step += 1
        state.samples_seen += len(x)
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
