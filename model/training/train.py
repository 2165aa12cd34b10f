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
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ingest.normalize import NormParams
from model.data.events import Event
from model.data.split import WindowRef
from model.hardware import describe_machine
from model.nets.architectures import build_model
from model.nets.checkpoint import load_checkpoint, save_checkpoint
from model.nets.config import NetworkConfig
from model.nets.network import FrameSequenceNetwork
from model.training.batches import check_crop, make_batch, random_crop
from model.verification.scores import ScoreAccumulator, grey_to_mmh

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
    config: NetworkConfig,
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


def initial_model(
    model_config: NetworkConfig, train_config: TrainConfig
) -> tuple[FrameSequenceNetwork, dict[str, object] | None]:
    """A fresh network, or one started from ``train_config.init_from`` (and what that was)."""
    model = build_model(model_config)
    if train_config.crop_cells is not None:
        if not model.takes_crops:
            raise ValueError(f"a {model_config.architecture} network cannot train on crops")
        check_crop(train_config.crop_cells, model_config.patch_size, model_config.frame_cells)
    if not train_config.init_from:
        return model, None
    initial, initial_config, initial_meta = load_checkpoint(Path(train_config.init_from))
    initialised_from: dict[str, object] = {
        k: initial_meta.get(k)
        for k in ("epoch", "samples_seen", "train_config", "hardware", "created_utc")
    }
    initial_data = initial_meta.get("training_data") or {}
    initialised_from["training_data"] = {
        "events": [
            e.get("name") if isinstance(e, dict) else str(e) for e in initial_data.get("events", [])
        ],
        "windows": initial_data.get("windows"),
    }
    if initial_config == model_config:
        model.load_state_dict(initial.state_dict())
    else:
        initialised_from["weights_transferred"] = transfer_weights(model, initial)
    return model, initialised_from


def _train_epoch(
    model: FrameSequenceNetwork,
    optimiser: torch.optim.Optimizer,
    events: list[Event],
    train_refs: list[WindowRef],
    configs: tuple[NetworkConfig, TrainConfig],
    rng: np.random.Generator,
    device: torch.device,
    deadline: float,
    result: TrainResult,
) -> tuple[float, int]:
    """One pass over the training windows in random order (or until ``deadline``, monotonic
    seconds): (summed loss, batches)."""
    model_config, train_config = configs
    model.train()
    order = rng.permutation(len(train_refs))
    running, batches = 0.0, 0
    bar = tqdm(
        range(0, len(order), train_config.batch_size),
        desc=f"epoch {len(result.history) + 1}",
        unit="batch",
        leave=False,
        disable=None,
    )
    for i in bar:
        refs = [train_refs[j] for j in order[i : i + train_config.batch_size]]
        x, y = make_batch(events, refs, model_config, rng if train_config.augment else None)
        origin = None
        if train_config.crop_cells is not None:
            x, y, origin = random_crop(x, y, train_config.crop_cells, model_config.patch_size, rng)
        running += train_step(model, optimiser, x, y, device, train_config.bf16, origin)
        batches += 1
        result.samples_seen += len(refs)
        bar.set_postfix(loss=f"{running / batches:.4f}")
        if time.monotonic() > deadline:
            break
    return running, batches


def _is_best(entry: EpochLog, select_by: str, result: TrainResult) -> bool:
    """Whether ``entry`` is the best epoch so far by ``select_by`` (recorded in ``result``)."""
    selected = entry.validation_loss
    if select_by == "csi":
        selected = 1.0 - (entry.validation_csi_0_5 or 0.0)
    if selected >= result.best_score:
        return False
    result.best_score = selected
    result.best_validation_loss = entry.validation_loss
    result.best_epoch = entry.epoch
    return True


def train(
    events: list[Event],
    windows: dict[str, list[WindowRef]],
    model_config: NetworkConfig,
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
    model, initialised_from = initial_model(model_config, train_config)
    model = model.to(device)
    optimiser = make_optimiser(model, train_config)
    rng = np.random.default_rng(train_config.seed)
    log_dir.mkdir(parents=True, exist_ok=True)
    result = TrainResult(best_epoch=-1, best_validation_loss=float("inf"))
    started = time.monotonic()
    deadline = started + train_config.max_minutes * 60
    for epoch in range(1, train_config.max_epochs + 1):
        epoch_start = time.monotonic()
        configs = (model_config, train_config)
        running, batches = _train_epoch(
            model, optimiser, events, windows["train"], configs, rng, device, deadline, result
        )
        batch = train_config.batch_size * 2
        validation_loss, scores = evaluate_loss(
            model,
            events,
            windows["validation"],
            model_config,
            batch,
            device,
            norm,
            train_config.bf16,
        )
        csi = [c for c in scores.scores()["csi"]["0.5"] if c is not None]
        entry = EpochLog(
            epoch,
            running / max(batches, 1),
            validation_loss,
            float(np.mean(csi)) if csi else None,
            time.monotonic() - epoch_start,
        )
        result.history.append(entry)
        log.info("epoch %d: train %.4f validation %.4f CSI(0.5) %s in %.0fs", *astuple(entry))
        _write_logs(result.history, log_dir / "train_log.csv", log_dir / "train_log.json")
        if _is_best(entry, train_config.select_by, result):
            meta = {
                "normalisation": {**asdict(norm), "version": norm.version},
                "training_data": data_description,
                "train_config": asdict(train_config),
                "epoch": epoch,
                "samples_seen": result.samples_seen,
                "validation": {"loss": validation_loss, "scores": scores.scores()},
                "device": str(device),
                "hardware": describe_machine(),
                "initialised_from": initialised_from,
            }
            save_checkpoint(out_path, model, model_config, meta)
        elif epoch - result.best_epoch >= train_config.patience:
            log.info(
                "early stop: no better validation %s for %d epochs",
                train_config.select_by,
                train_config.patience,
            )
            break
        if time.monotonic() > deadline:
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
