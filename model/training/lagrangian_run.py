"""One training sitting of the Lagrangian ConvLSTM from event folders: views, split, cached
windows, then `model.training.lagrangian_train.train_lagrangian` (the side effects at this edge)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.settings import IngestSettings
from model.data.events import Event, describe_events
from model.data.split import blocks_fraction, split_windows, training_event_folds
from model.data.views import load_all_views
from model.nets.architectures import build_model
from model.nets.checkpoint import load_checkpoint
from model.nets.config import NetworkConfig
from model.training.lagrangian_data import lagrangian_windows, training_refs
from model.training.lagrangian_train import (
    LagrangianTrainConfig,
    StopFlag,
    TrainState,
    train_lagrangian,
)
from model.training.lagrangian_validation import validation_set

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunPaths:
    """Where a run writes: the shipped-format checkpoint, its resumable state, the window cache."""

    checkpoint: Path
    resumable: Path
    cache: Path


def describe(
    events: list[Event],
    views: list[Event],
    blocks: list[Any],
    block_frames: int,
    counts: dict[str, int],
) -> dict[str, Any]:
    """The ``training_data`` record of the checkpoint."""
    return {
        "events": describe_events(events),
        "views": [v.name for v in views],
        "block_frames": block_frames,
        "split": "stratified by rain (model.data.split)",
        "blocks": [b.__dict__ for b in blocks],
        "windows": counts,
    }


def _init_record(checkpoint: Path) -> dict[str, Any]:
    """What the model card says of the run a checkpoint came from."""
    meta = load_checkpoint(checkpoint)[2]
    keys = (
        "step", "samples_seen", "training_minutes", "sittings", "train_config", "run_so_far",
        "validation",
    )  # fmt: skip
    return {k: meta[k] for k in keys if k in meta}


def run_sitting(
    roots: list[Path],
    settings: IngestSettings,
    model_config: NetworkConfig,
    train_config: LagrangianTrainConfig,
    paths: RunPaths,
    block_frames: int = 30,
    extra_crops: bool = True,
    resume: bool = False,
    init_from: Path | None = None,
    hold_out: tuple[int, int] | None = None,
    train_fraction: float = 1.0,
    validation_stride: int = 1,
) -> TrainState:
    """Assemble the data and train one sitting (resuming from ``paths.resumable``; a new run
    from ``init_from``'s weights when given, whose shape must be ``model_config``'s).
    ``hold_out`` (k, n): leave out the training blocks of fold k of n
    (`model.data.split.training_event_folds`), recorded in the checkpoint's ``held_out``.
    ``train_fraction``: train on that share of the training blocks (`blocks_fraction`, the
    learning curve); ``validation_stride``: validate on every that-many-th validation window."""
    from ingest.ingestor import norm_params_for

    c = model_config
    events, views = load_all_views(roots, settings, extra_crops)
    windows, blocks = split_windows(events, c.in_frames, c.out_frames, block_frames)
    held_out: list[str] = []
    if hold_out is not None:
        fold, n_folds = hold_out
        if not 0 <= fold < n_folds:
            raise ValueError(f"hold-out fold {fold} is not one of 0..{n_folds - 1}")
        held_out = training_event_folds(blocks, n_folds)[fold]
    train_blocks = blocks_fraction(
        {(b.event, b.first) for b in blocks if b.split == "train" and b.event not in held_out},
        train_fraction,
    )
    train_refs = training_refs(views, train_blocks, block_frames, c.in_frames, c.out_frames)
    train = [
        w
        for w in lagrangian_windows(
            views, train_refs, c.in_frames, c.out_frames, paths.cache, wet_only=True
        )
        if len(w.starts)
    ]
    validation_refs = windows["validation"][::validation_stride]
    validation_views = lagrangian_windows(
        events, validation_refs, c.in_frames, c.out_frames, paths.cache, wet_only=False
    )
    counts = {
        "train": sum(len(w.starts) for w in train),
        "train_views": len(train),
        "train_blocks": len(train_blocks),
        "validation": len(validation_refs),
        "test": len(windows["test"]),
    }
    log.info("windows %s", counts)
    meta: dict[str, Any] = {"training_data": describe(events, views, blocks, block_frames, counts)}
    meta["training_data"]["train_fraction"] = train_fraction
    if hold_out is not None:
        meta["held_out"] = {"fold": hold_out[0], "folds": hold_out[1], "events": held_out}
    model = build_model(model_config)
    if init_from is not None:
        meta["init_from"] = {"path": str(init_from), **_init_record(init_from)}
        if not resume:  # a resumed run has its own weights
            model.load_state_dict(load_checkpoint(init_from)[0].state_dict())
    stop = StopFlag()
    stop.install()
    return train_lagrangian(
        model,
        model_config,
        train_config,
        train,
        validation_set(validation_views),
        norm_params_for(settings, events[0].site_id),
        paths.checkpoint,
        paths.resumable,
        meta,
        resume=resume,
        stop=stop,
    )
