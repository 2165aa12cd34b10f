"""The trainer (third tier): data, loss, optimiser, early stopping, logs and the checkpoint.

Cross-entropy on grey levels (``BCEWithLogitsLoss`` on the model's logits), RMSProp
(lr 1e-3, decay 0.9) and early stopping on the validation loss, as METHOD.md prescribes
(``select_by="csi"`` stops on the validation CSI at 0.5 mm/h instead, and ``init_from``
continues from an earlier checkpoint's weights).
Seeds are fixed; each epoch appends a row to a CSV and a JSON log; the best model so far is
written atomically as a checkpoint that carries its architecture.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ingest.normalize import NormParams
from model.architectures import build_model
from model.checkpoint import load_checkpoint, save_checkpoint
from model.config import ConvLSTMConfig
from model.evaluate import grey_to_mmh
from model.events import Event
from model.hardware import describe_machine
from model.network import FrameSequenceNetwork, crop_fits
from model.scores import ScoreAccumulator
from model.split import WindowRef

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Every choice of a training run; recorded in the checkpoint and the model card."""

    learning_rate: float = 1e-3
    rmsprop_decay: float = 0.9
    batch_size: int = 4
    max_epochs: int = 50
    patience: int = 5  # epochs without a better validation loss before stopping
    max_minutes: float = 60.0  # wall-clock budget; the best checkpoint so far is kept
    augment: bool = True  # the 8 flips/rotations of the square grid, same for the whole window
    seed: int = 0
    bf16: bool = False  # CPU/GPU autocast to bfloat16 for the forward pass
    device: str = "auto"
    select_by: str = "loss"  # early stopping on validation "loss", or on "csi" at 0.5 mm/h
    init_from: str | None = None  # weights to start from: same config, else those that fit
    # Train on random crops of this many frame cells a side (a multiple of the patch size),
    # one place per batch, after the flips; None: whole frames. Convolutional networks only;
    # validation always reads whole frames.
    crop_cells: int | None = None

    def __post_init__(self) -> None:
        if self.select_by not in ("loss", "csi"):
            raise ValueError(f"select_by must be 'loss' or 'csi', got {self.select_by!r}")
        if self.crop_cells is not None and self.crop_cells < 1:
            raise ValueError(f"crop_cells must be positive, got {self.crop_cells}")


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    validation_loss: float
    validation_csi_0_5: float | None
    seconds: float


@dataclass
class TrainResult:
    best_epoch: int
    best_validation_loss: float
    best_score: float = float("inf")  # what select_by minimises: loss, or 1 - CSI
    history: list[EpochLog] = field(default_factory=list)
    seconds: float = 0.0
    samples_seen: int = 0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def window_arrays(
    events: list[Event], ref: WindowRef, in_frames: int, out_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (in, H, W), targets (out, H, W)) grey float32 of one window."""
    grey = events[ref.event_index].grey
    return (
        grey[ref.start : ref.start + in_frames],
        grey[ref.start + in_frames : ref.start + in_frames + out_frames],
    )


def dihedral(array: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 symmetries of the square on the last two axes (k in 0..7)."""
    out = np.rot90(array, k % 4, axes=(-2, -1))
    return np.flip(out, axis=-1) if k >= 4 else out


def make_batch(
    events: list[Event],
    refs: list[WindowRef],
    config: ConvLSTMConfig,
    rng: np.random.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack windows into (B, in, H, W) and (B, out, H, W) tensors; ``rng`` augments."""
    inputs, targets = [], []
    for ref in refs:
        x, y = window_arrays(events, ref, config.in_frames, config.out_frames)
        if rng is not None:
            k = int(rng.integers(8))
            x, y = dihedral(x, k), dihedral(y, k)
        inputs.append(np.ascontiguousarray(x))
        targets.append(np.ascontiguousarray(y))
    return torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(targets))


def check_crop(crop_cells: int, patch_size: int, frame_cells: int) -> None:
    """ValueError unless a crop of ``crop_cells`` a side fits the frames and the patches."""
    if not crop_fits((crop_cells, crop_cells), (0, 0), patch_size, frame_cells):
        raise ValueError(
            f"a crop of {crop_cells} cells must be a multiple of the patch size {patch_size} "
            f"and at most the frame's {frame_cells}"
        )


def random_crop(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    crop_cells: int,
    patch_size: int,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """The same random ``crop_cells`` square of a batch's inputs and targets, and its corner.

    Args:
        inputs: ``(B, in, H, W)``; targets: ``(B, out, H, W)`` (square frames).
        crop_cells: side of the crop in frame cells, a multiple of ``patch_size``, at most H.

    Returns:
        ``(inputs (B, in, crop, crop), targets (B, out, crop, crop), (row, column))``, the
        corner a multiple of ``patch_size`` (what `EncoderForecaster.forward` takes).
    """
    cells = inputs.shape[-1]
    check_crop(crop_cells, patch_size, cells)
    places = (cells - crop_cells) // patch_size + 1
    row, col = (int(v) * patch_size for v in rng.integers(places, size=2))
    region = (..., slice(row, row + crop_cells), slice(col, col + crop_cells))
    return inputs[region], targets[region], (row, col)


def make_optimiser(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """RMSProp with the run's learning rate and decay (METHOD.md)."""
    return torch.optim.RMSprop(
        model.parameters(), lr=config.learning_rate, alpha=config.rmsprop_decay
    )


def train_step(
    model: nn.Module,
    optimiser: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    device: torch.device,
    bf16: bool = False,
    origin: tuple[int, int] | None = None,
) -> float:
    """One optimiser step on a batch; returns its mean cross-entropy (BCE on grey levels).

    Args:
        inputs: ``(B, in_frames, H, W)`` grey in [0, 1]; targets: ``(B, out_frames, H, W)``.
        origin: where ``(H, W)`` lies in the frame when the batch is a crop (`random_crop`).
    """
    inputs, targets = inputs.to(device), targets.to(device)
    optimiser.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(inputs, origin)
    loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), targets)
    loss.backward()
    optimiser.step()
    return float(loss.detach())


def evaluate_loss(
    model: FrameSequenceNetwork,
    events: list[Event],
    refs: list[WindowRef],
    config: ConvLSTMConfig,
    batch_size: int,
    device: torch.device,
    norm: NormParams,
    bf16: bool = False,
) -> tuple[float, ScoreAccumulator]:
    """Mean cross-entropy and pooled scores of the model on ``refs`` (no augmentation)."""
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    total, cells = 0.0, 0
    scores = ScoreAccumulator(config.out_frames)
    model.eval()
    with torch.no_grad():
        for i in range(0, len(refs), batch_size):
            x, y = make_batch(events, refs[i : i + batch_size], config, None)
            x, y = x.to(device), y.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(x)
            total += float(loss_fn(logits.float(), y))
            cells += y.numel()
            forecast = torch.sigmoid(logits.float()).cpu().numpy()
            scores.add(grey_to_mmh(forecast, norm), grey_to_mmh(y.cpu().numpy(), norm))
    return total / max(cells, 1), scores


def transfer_weights(target: nn.Module, source: nn.Module) -> list[str]:
    """Copy into ``target`` every tensor of ``source`` with the same name and shape.

    A ``saconvlstm`` cell wraps a ConvLSTM cell as ``.conv``, so ``encoder.0.conv.gates.weight``
    takes ``encoder.0.gates.weight``: a ConvLSTM checkpoint warm-starts an SA-ConvLSTM (its
    attention memory starts fresh). Returns the names copied; ValueError when none fits.
    """
    available = source.state_dict()
    state = target.state_dict()
    copied = []
    for name, tensor in state.items():
        match = available.get(name, available.get(name.replace(".conv.", ".")))
        if match is not None and match.shape == tensor.shape:
            state[name] = match.clone()
            copied.append(name)
    if not copied:
        raise ValueError("no tensor of the initial checkpoint fits this network")
    target.load_state_dict(state)
    return copied


def train(
    events: list[Event],
    windows: dict[str, list[WindowRef]],
    model_config: ConvLSTMConfig,
    train_config: TrainConfig,
    norm: NormParams,
    out_path: Path,
    log_dir: Path,
    data_description: dict[str, object],
) -> TrainResult:
    """Train, keep the best checkpoint by validation loss at ``out_path``, log per epoch."""
    if not windows["train"] or not windows["validation"]:
        raise ValueError(
            f"need training and validation windows, got {len(windows['train'])} and "
            f"{len(windows['validation'])}: give more events or smaller --block-frames"
        )
    seed_everything(train_config.seed)
    device = resolve_device(train_config.device)
    model = build_model(model_config)
    if train_config.crop_cells is not None:
        if not model.takes_crops:
            raise ValueError(f"a {model_config.architecture} network cannot train on crops")
        check_crop(train_config.crop_cells, model_config.patch_size, model_config.frame_cells)
    initialised_from: dict[str, object] | None = None
    if train_config.init_from:
        initial, initial_config, initial_meta = load_checkpoint(Path(train_config.init_from))
        initialised_from = {
            k: initial_meta.get(k)
            for k in ("epoch", "samples_seen", "train_config", "hardware", "created_utc")
        }
        initial_data = initial_meta.get("training_data") or {}
        initialised_from["training_data"] = {
            "events": [
                e.get("name") if isinstance(e, dict) else str(e)
                for e in initial_data.get("events", [])
            ],
            "windows": initial_data.get("windows"),
        }
        if initial_config == model_config:
            model.load_state_dict(initial.state_dict())
        else:
            initialised_from["weights_transferred"] = transfer_weights(model, initial)
    model = model.to(device)
    optimiser = make_optimiser(model, train_config)
    rng = np.random.default_rng(train_config.seed)
    log_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = log_dir / "train_log.csv", log_dir / "train_log.json"
    result = TrainResult(best_epoch=-1, best_validation_loss=float("inf"))
    started = time.monotonic()
    budget_s = train_config.max_minutes * 60
    train_refs = list(windows["train"])
    for epoch in range(1, train_config.max_epochs + 1):
        epoch_start = time.monotonic()
        model.train()
        order = rng.permutation(len(train_refs))
        running, batches = 0.0, 0
        bar = tqdm(
            range(0, len(order), train_config.batch_size),
            desc=f"epoch {epoch}",
            unit="batch",
            leave=False,
            disable=None,
        )
        for i in bar:
            refs = [train_refs[j] for j in order[i : i + train_config.batch_size]]
            x, y = make_batch(events, refs, model_config, rng if train_config.augment else None)
            origin = None
            if train_config.crop_cells is not None:
                x, y, origin = random_crop(
                    x, y, train_config.crop_cells, model_config.patch_size, rng
                )
            running += train_step(model, optimiser, x, y, device, train_config.bf16, origin)
            batches += 1
            result.samples_seen += len(refs)
            bar.set_postfix(loss=f"{running / batches:.4f}")
            if time.monotonic() - started > budget_s:
                break
        validation_loss, scores = evaluate_loss(
            model,
            events,
            windows["validation"],
            model_config,
            train_config.batch_size * 2,
            device,
            norm,
            train_config.bf16,
        )
        csi = scores.scores()["csi"]["0.5"]
        defined = [c for c in csi if c is not None]
        entry = EpochLog(
            epoch,
            running / max(batches, 1),
            validation_loss,
            float(np.mean(defined)) if defined else None,
            time.monotonic() - epoch_start,
        )
        result.history.append(entry)
        log.info(
            "epoch %d: train %.4f validation %.4f CSI(0.5) %s in %.0fs",
            epoch,
            entry.train_loss,
            validation_loss,
            entry.validation_csi_0_5,
            entry.seconds,
        )
        _write_logs(result.history, csv_path, json_path)
        selected = validation_loss
        if train_config.select_by == "csi":
            selected = 1.0 - (entry.validation_csi_0_5 or 0.0)
        if selected < result.best_score:
            result.best_score = selected
            result.best_validation_loss = validation_loss
            result.best_epoch = epoch
            save_checkpoint(
                out_path,
                model,
                model_config,
                {
                    "normalisation": {**asdict(norm), "version": norm.version},
                    "training_data": data_description,
                    "train_config": asdict(train_config),
                    "epoch": epoch,
                    "samples_seen": result.samples_seen,
                    "validation": {"loss": validation_loss, "scores": scores.scores()},
                    "device": str(device),
                    "hardware": describe_machine(),
                    "initialised_from": initialised_from,
                },
            )
        elif epoch - result.best_epoch >= train_config.patience:
            log.info(
                "early stop: no better validation %s for %d epochs",
                train_config.select_by,
                train_config.patience,
            )
            break
        if time.monotonic() - started > budget_s:
            log.info("time budget of %.0f min reached", train_config.max_minutes)
            break
    result.seconds = time.monotonic() - started
    return result


def _write_logs(history: list[EpochLog], csv_path: Path, json_path: Path) -> None:
    rows = [asdict(h) for h in history]
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    json_path.write_text(json.dumps(rows, indent=2))
