"""The Lagrangian ConvLSTM's trainer: losses in Lagrangian coordinates, selection on the
validation CSI in the observed (Eulerian) frame, and runs that resume across sittings.

- Loss (`model.training.lagrangian_losses`): taken against the targets moved into Lagrangian
  coordinates (L-CNN's way; the motion and the warps are computed once,
  `model.training.lagrangian_data`), on the cells whose trajectory stayed inside the grid, or
  against the observed frames after a differentiable warp (``target_frame="eulerian"``).
- Selection: every ``eval_every_min`` the validation windows are forecast as served (network,
  then `model.advection.lagrangian.to_eulerian`) and scored against the observed frames; the score
  is the mean of the pooled CSI at 0.5 and 2 mm/h over the 15 leads, and the best weights so far
  whose validation rain MSE, CSI(2) and CSI(5) are no worse than the zero start's (the
  extrapolation nowcast's; the skill issue's criteria, on validation) are written as the
  shipped-format checkpoint (weights, config, meta).
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
from model.advection import advection_torch
from model.hardware import describe_machine
from model.nets.checkpoint import save_checkpoint, update_meta
from model.nets.config import NetworkConfig
from model.nets.network import FrameSequenceNetwork
from model.training.batches import dihedral
from model.training.lagrangian_data import LagrangianWindows
from model.training.lagrangian_losses import LOSS_TERMS, SOFT_CSI_GREYS, build_loss
from model.training.lagrangian_validation import (
    ValidationSet,
    mean_csi,
    mean_rain_mse,
    validate,
    zero_start,
)
from model.training.train import resolve_device

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


GUARDED_CSI_MMH = ("2.0", "5.0")
"""The issue's "no worse than extrapolation" thresholds besides the selection score's 0.5 mm/h:
a checkpoint below the zero start's validation CSI at one of them is not kept."""


def eligible(pooled: dict[str, Any], state: TrainState) -> bool:
    """Whether validation scores ``pooled`` may be kept: rain MSE at or below the zero start's
    and CSI at or above it at each of ``state.reference_csi``'s thresholds (where recorded)."""
    below = [t for t, ref in (state.reference_csi or {}).items() if mean_csi(pooled, t) < ref]
    mse_ok = state.reference_rain_mse is None or mean_rain_mse(pooled) <= state.reference_rain_mse
    return not below and mse_ok


@dataclass
class TrainState:
    """What a sitting leaves for the next one. ``reference_rain_mse``: the validation rain MSE
    of the zero start (the extrapolation nowcast); a model is kept only at or below it.
    ``reference_csi``: the zero start's validation CSI (15-lead means) at the thresholds of
    `GUARDED_CSI_MMH`; a model is kept only at or above them too (absent in runs before it)."""

    reference_rain_mse: float | None = None
    reference_csi: dict[str, float] | None = None
    step: int = 0
    samples_seen: int = 0
    best_score: float = -1.0
    best_step: int = -1
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    sittings: list[dict[str, Any]] = field(default_factory=list)


def dihedral_vectors(vectors: np.ndarray, k: int) -> np.ndarray:
    """A (2, H, W) field of (x, y) vectors under `model.training.train.dihedral` symmetry ``k``.

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
    inflow: str = "zero",
) -> Tensor:
    """The loss of a batch: against the targets moved into Lagrangian coordinates (L-CNN), or
    against the observed frames after moving each lead's output along the motion with a
    differentiable semi-Lagrangian warp (``target_frame="eulerian"``, LUPIN's way). There,
    with ``inflow="edge"`` every observed cell counts, those whose rain came from beyond the
    grid too (they read the output's edge, so the network learns what flows in); with "zero"
    only the cells whose trajectory stayed in the grid."""
    out = model(batch.inputs)
    if target_frame == "lagrangian":
        return loss_fn(out, batch.targets, batch.inside)
    displacements = advection_torch.lead_displacements(batch.velocity, out.shape[1])
    moved = advection_torch.warp(out, displacements, inflow).to(out.dtype)
    counted = (
        advection_torch.inside(displacements)
        if inflow == "zero"
        else torch.ones_like(batch.observed, dtype=torch.bool)
    )
    return loss_fn(moved, batch.observed, counted)


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


class _Sitting:
    """One sitting's moving parts: the model, optimiser, random generator and run state, and
    the evaluation that scores, keeps the best and writes the resumable state."""

    def __init__(
        self,
        model: FrameSequenceNetwork,
        model_config: NetworkConfig,
        config: LagrangianTrainConfig,
        validation: ValidationSet,
        norm: NormParams,
        paths: tuple[Path, Path],
        meta: dict[str, Any],
    ) -> None:
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        self.model_config, self.config = model_config, config
        self.validation, self.norm = validation, norm
        self.out_path, self.resume_path = paths
        self.meta = meta
        self.optimizer = make_optimizer(self.model, config)
        self.rng = np.random.default_rng(config.seed)
        torch.manual_seed(config.seed)
        self.state = TrainState()
        self.running, self.batches = 0.0, 0
        self.started = time.monotonic()
        self.seconds_before = 0.0
        self.record: dict[str, Any] = {}

    def resume(self) -> None:
        """Restore the state written at ``resume_path`` (weights, optimiser, generators); a
        ValueError when the run held out other events than this sitting would (a fold run
        resumed without its ``--hold-out-fold``, or with another)."""
        self.state, extra = load_resumable(self.resume_path, self.model, self.optimizer, self.rng)
        was, now = extra.get("meta", {}).get("held_out"), self.meta.get("held_out")
        if was != now:
            raise ValueError(
                f"{self.resume_path} is a run that held out {was}; this sitting would hold out "
                f"{now}: resume it with the same --hold-out-fold"
            )
        log.info("resumed at step %d (%d samples)", self.state.step, self.state.samples_seen)

    def begin(self) -> None:
        """Open this sitting's record and its clock."""
        self.record = {
            "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "from_step": self.state.step,
            "hardware": describe_machine(),
        }
        self.state.sittings.append(self.record)
        self.started = time.monotonic()
        self.seconds_before = self.state.seconds

    def step(self, train: list[LagrangianWindows], loss_fn: Callable[..., Tensor]) -> None:
        """One optimiser step on a random batch."""
        config = self.config
        self.model.train()
        batch = sample_batch(train, config.batch_size, self.rng, config.augment).to(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        loss = batch_loss(self.model, batch, loss_fn, config.target_frame, self.model_config.inflow)
        loss.backward()
        self.optimizer.step()
        self.running += float(loss.detach())
        self.batches += 1
        self.state.step += 1
        self.state.samples_seen += len(batch.inputs)

    def evaluate(self) -> None:
        """Score on validation, keep the weights if best and eligible, write the state."""
        state = self.state
        score, pooled = validate(
            self.model, self.validation, self.norm, self.device, self.model_config.inflow
        )
        state.seconds = self.seconds_before + time.monotonic() - self.started
        entry = self._history_entry(score, pooled)
        state.history.append(entry)
        self.running, self.batches = 0.0, 0
        log.info(
            "step %(step)d samples %(samples_seen)d loss %(train_loss).4f "
            "val CSI(0.5) %(validation_csi_0_5).3f CSI(2) %(validation_csi_2).3f "
            "rain MSE %(validation_rain_mse).3f",
            entry,
        )
        self.record["to_step"] = state.step
        if entry["eligible"] and score > state.best_score:
            state.best_score, state.best_step = score, state.step
            self._save_best(score, pooled)
        elif state.best_step >= 0 and self.out_path.exists():  # the card counts the whole run
            run = {
                "step": state.step,
                "samples_seen": state.samples_seen,
                "sittings": state.sittings,
            }
            update_meta(
                self.out_path, {"run_so_far": {**run, "minutes": round(state.seconds / 60, 1)}}
            )
        save_resumable(
            self.resume_path, self.model, self.optimizer, self.rng, state, {"meta": self.meta}
        )

    def _history_entry(self, score: float, pooled: dict[str, Any]) -> dict[str, Any]:
        state = self.state
        entry: dict[str, Any] = {
            "step": state.step,
            "samples_seen": state.samples_seen,
            "minutes": round(state.seconds / 60, 2),
            "train_loss": self.running / max(self.batches, 1),
            "validation_score": score,
            "validation_csi_0_5": mean_csi(pooled, "0.5"),
            "validation_csi_2": mean_csi(pooled, "2.0"),
            "validation_csi_5": mean_csi(pooled, "5.0"),
        }
        entry["validation_rain_mse"] = mean_rain_mse(pooled)
        entry["eligible"] = eligible(pooled, state)
        return entry

    def _save_best(self, score: float, pooled: dict[str, Any]) -> None:
        state, norm = self.state, self.norm
        save_checkpoint(
            self.out_path,
            self.model,
            self.model_config,
            {
                **self.meta,
                "normalisation": {**asdict(norm), "version": norm.version},
                "train_config": asdict(self.config),
                "step": state.step,
                "samples_seen": state.samples_seen,
                "training_minutes": round(state.seconds / 60, 1),
                "validation": {"score": score, "scores": pooled},
                "selection_guards": {
                    "rain_mse": state.reference_rain_mse,
                    "csi": state.reference_csi,
                },
                "device": str(self.device),
                "hardware": describe_machine(),
                "sittings": state.sittings,
            },
        )


def train_lagrangian(
    model: FrameSequenceNetwork,
    model_config: NetworkConfig,
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
    sitting = _Sitting(model, model_config, config, validation, norm, (out_path, resume_path), meta)
    if resume:
        sitting.resume()
    loss_fn = build_loss(config.loss, config.soft_csi_mmh, config.rain_mse_weight)
    sitting.begin()
    next_eval = sitting.started + config.eval_every_min * 60
    budget_end = sitting.started + config.max_minutes * 60
    if sitting.state.step == 0:
        if sitting.state.reference_rain_mse is None:  # the extrapolation nowcast's
            _, pooled = zero_start(validation, norm, model_config.inflow)
            sitting.state.reference_rain_mse = mean_rain_mse(pooled)
            sitting.state.reference_csi = {t: mean_csi(pooled, t) for t in GUARDED_CSI_MMH}
        sitting.evaluate()  # the start (the zero start unless started from a checkpoint)
    while True:
        sitting.step(train, loss_fn)
        now = time.monotonic()
        steps_done = config.max_steps is not None and sitting.state.step >= config.max_steps
        if (stop is not None and stop.set) or now >= budget_end or steps_done:
            sitting.evaluate()
            break
        if now >= next_eval:
            sitting.evaluate()
            next_eval = time.monotonic() + config.eval_every_min * 60
    return sitting.state
