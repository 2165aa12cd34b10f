"""``nowcast train`` and ``nowcast synth-corpus``: training the family's networks."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from model.cli.common import load_events
from model.paths import default_checkpoint

if TYPE_CHECKING:
    from model.nets.config import NetworkConfig
    from model.training.lagrangian_train import LagrangianTrainConfig
    from model.training.train import TrainConfig

log = logging.getLogger(__name__)


def train(
    folders: Annotated[
        list[Path],
        typer.Argument(help="Event folders (or parents of them).", exists=True, file_okay=False),
    ],
    arch: Annotated[
        str,
        typer.Option("--arch", help="Network: convlstm, eulerian-convlstm, saconvlstm or fclstm."),
    ] = "convlstm",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Checkpoint to write; default model/checkpoints/ARCH.safetensors."
        ),
    ] = None,
    log_dir: Annotated[Path, typer.Option("--log-dir")] = Path("var/train"),
    max_minutes: Annotated[float, typer.Option("--max-minutes", min=0.1)] = 60.0,
    max_epochs: Annotated[int, typer.Option("--max-epochs", min=1)] = 50,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 4,
    learning_rate: Annotated[
        float,
        typer.Option("--learning-rate", min=1e-7, max=1.0, help="RMSProp step (METHOD.md: 1e-3)."),
    ] = 1e-3,
    block_frames: Annotated[int, typer.Option("--block-frames", min=20)] = 30,
    patience: Annotated[int, typer.Option("--patience", min=1)] = 5,
    augment: Annotated[bool, typer.Option(help="Flips and rotations.")] = True,
    bf16: Annotated[bool, typer.Option(help="bfloat16 autocast.")] = False,
    hidden: Annotated[
        str | None,
        typer.Option("--hidden", help="Hidden channels (fclstm: units) per layer, e.g. 64,64."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    select_by: Annotated[
        str, typer.Option("--select-by", help="Early stopping on validation 'loss' or 'csi'.")
    ] = "loss",
    init_from: Annotated[
        Path | None, typer.Option("--init-from", help="Start from this checkpoint's weights.")
    ] = None,
    crop_cells: Annotated[
        int | None,
        typer.Option(
            "--crop-cells",
            min=2,
            help="Train on random crops this many cells a side (conv networks; validation "
            "reads whole frames).",
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="convlstm: continue the run whose resumable state is this file (written every "
            "--eval-every-min and on SIGTERM); without it a new run starts there.",
        ),
    ] = None,
    loss: Annotated[
        str,
        typer.Option("--loss", help="convlstm: terms mse, soft_csi, rain_mse joined by '+'."),
    ] = "soft_csi+mse+rain_mse",
    soft_csi_mmh: Annotated[
        str, typer.Option("--soft-csi-mmh", help="convlstm: soft CSI thresholds, e.g. 0.5,2.")
    ] = "0.5,2",
    rain_mse_weight: Annotated[
        float, typer.Option("--rain-mse-weight", min=0.0, help="convlstm: rain MSE's weight.")
    ] = 0.2,
    target_frame: Annotated[
        str,
        typer.Option(
            "--target-frame",
            help="convlstm: take the loss in 'lagrangian' coordinates (targets moved back) or "
            "'eulerian' (outputs moved by a differentiable warp).",
        ),
    ] = "lagrangian",
    eval_every_min: Annotated[
        float, typer.Option("--eval-every-min", min=0.05, help="convlstm: validation cadence.")
    ] = 5.0,
    extra_crops: Annotated[
        bool,
        typer.Option(help="convlstm: also train on 330-cell crops off the centre of large grids."),
    ] = True,
    hold_out_fold: Annotated[
        str | None,
        typer.Option(
            "--hold-out-fold",
            help="convlstm, cross-validation: K/N leaves out fold K of the training events dealt "
            "into N folds (model.data.split.training_event_folds), e.g. 0/3; give it again "
            "with --resume. Score the held-out events with model.experiments.fold_scores.",
        ),
    ] = None,
    train_fraction: Annotated[
        float,
        typer.Option(
            "--train-fraction",
            min=0.01,
            max=1.0,
            help="convlstm, the learning curve: train on this share of the training blocks "
            "(a fixed pseudo-random choice by block; 0.1 within 0.3 within 1).",
        ),
    ] = 1.0,
    validation_stride: Annotated[
        int,
        typer.Option(
            "--validation-stride",
            min=1,
            help="convlstm: validate on every this-many-th validation window (many archives).",
        ),
    ] = 1,
    inflow: Annotated[
        str | None,
        typer.Option(
            "--inflow",
            help="convlstm: what rain from beyond the grid reads, 'zero' (pysteps) or 'edge' "
            "(the output's nearest boundary cell); default: the architecture's ('edge') or, "
            "with --init-from, that checkpoint's.",
        ),
    ] = None,
) -> None:
    """Train a network of the family on real radar events (time-block split).

    ``convlstm`` (the Lagrangian ConvLSTM) trains by sittings: ``--max-minutes`` per sitting,
    ``--resume`` continues one; the others train by epochs.
    """
    # long only by its option declarations: the work is in the two functions below
    from model.nets.architectures import architecture_names, get_architecture

    if arch not in architecture_names():
        valid = ", ".join(architecture_names())
        raise typer.BadParameter(f"--arch {arch!r}: valid are {valid}")
    if get_architecture(arch).lagrangian:
        from model.training.lagrangian_train import LagrangianTrainConfig

        try:
            train_config = LagrangianTrainConfig(
                learning_rate=learning_rate,
                batch_size=batch_size,
                max_minutes=max_minutes,
                eval_every_min=eval_every_min,
                loss=loss,
                soft_csi_mmh=tuple(float(t) for t in soft_csi_mmh.split(",")),
                rain_mse_weight=rain_mse_weight,
                target_frame=target_frame,
                augment=augment,
                seed=seed,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        _train_lagrangian(
            folders,
            arch,
            _lagrangian_config(arch, hidden, init_from, inflow),
            train_config,
            (out, log_dir, resume, init_from),
            (block_frames, extra_crops, _fold(hold_out_fold), train_fraction, validation_stride),
        )
        return
    from model.training.train import TrainConfig

    epochs_config = TrainConfig(
        learning_rate=learning_rate,
        batch_size=batch_size,
        max_epochs=max_epochs,
        patience=patience,
        max_minutes=max_minutes,
        select_by=select_by,
        init_from=str(init_from) if init_from else None,
        augment=augment,
        bf16=bf16,
        seed=seed,
        crop_cells=crop_cells,
    )
    _train_by_epochs(folders, arch, hidden, epochs_config, out, log_dir, block_frames)


def _train_by_epochs(
    folders: list[Path],
    arch: str,
    hidden: str | None,
    train_config: TrainConfig,
    out: Path | None,
    log_dir: Path,
    block_frames: int,
) -> None:
    """An Eulerian network trained by epochs, the best checkpoint by validation at ``out``."""
    from ingest.ingestor import norm_params_for
    from ingest.settings import get_ingest_settings
    from model.data.events import describe_events
    from model.data.split import split_windows
    from model.nets.architectures import default_config
    from model.training.train import train as run_training

    events = load_events(folders)
    try:
        config = default_config(
            arch,
            hidden_channels=tuple(int(h) for h in hidden.split(",")) if hidden else None,
            frame_cells=int(events[0].grey.shape[-1]),  # the normalised grid of the settings
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    out = out or default_checkpoint(arch)
    windows, blocks = split_windows(events, config.in_frames, config.out_frames, block_frames)
    counts = {k: len(v) for k, v in windows.items()}
    typer.echo(f"{len(events)} events, {len(blocks)} blocks, windows {counts}")
    description = {
        "events": describe_events(events),
        "block_frames": block_frames,
        "blocks": [b.__dict__ for b in blocks],
        "windows": counts,
    }
    norm = norm_params_for(get_ingest_settings(), events[0].site_id)
    try:
        result = run_training(
            events, windows, config, train_config, norm, out, log_dir, description
        )
    except ValueError as exc:  # the run's settings do not fit the network or the data
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(
        f"best epoch {result.best_epoch}, validation loss {result.best_validation_loss:.4f}, "
        f"{result.samples_seen} samples in {result.seconds / 60:.1f} min -> {out}"
    )


def _fold(spec: str | None) -> tuple[int, int] | None:
    """``--hold-out-fold`` "K/N" as (K, N); BadParameter when it is not that."""
    if spec is None:
        return None
    fold, _, folds = spec.partition("/")
    if not (fold.isdigit() and folds.isdigit()) or not 0 <= int(fold) < int(folds):
        raise typer.BadParameter(f"--hold-out-fold {spec!r}: K/N with 0 <= K < N, e.g. 0/3")
    return int(fold), int(folds)


def _lagrangian_config(
    arch: str, hidden: str | None, init_from: Path | None, inflow: str | None
) -> NetworkConfig:
    """The network of a Lagrangian run: ``init_from``'s (same shape, its weights to start
    from) or the architecture's defaults, with ``hidden`` and ``inflow`` where given."""
    from dataclasses import replace

    from ingest.settings import get_ingest_settings
    from model.nets.architectures import default_config
    from model.nets.checkpoint import read_config

    try:
        if init_from is not None:
            config = read_config(init_from)
            if config.architecture != arch:
                raise ValueError(f"--init-from {init_from} holds {config.architecture}, not {arch}")
            return replace(config, inflow=inflow or config.inflow)
        return default_config(
            arch,
            hidden_channels=tuple(int(h) for h in hidden.split(",")) if hidden else None,
            frame_cells=get_ingest_settings().target_cells,  # the normalised grid of the settings
            inflow=inflow,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _train_lagrangian(
    folders: list[Path],
    arch: str,
    config: NetworkConfig,
    train_config: LagrangianTrainConfig,
    where: tuple[Path | None, Path, Path | None, Path | None],
    data: tuple[int, bool, tuple[int, int] | None, float, int],
) -> None:
    """One sitting of a Lagrangian network (`model.training.lagrangian_run`). ``where``: the
    checkpoint to write (None: the shipped one), the log folder, the resumable state to continue
    (None: a new run) and the checkpoint whose weights a new run starts from (None: scratch).
    ``data``: block length (frames), whether to add the off-centre crops, the fold held out,
    the share of the training blocks and the validation windows' stride."""
    from ingest.settings import get_ingest_settings
    from model.training.lagrangian_run import RunPaths, run_sitting

    out, log_dir, resume, init_from = where
    block_frames, extra_crops, hold_out, train_fraction, validation_stride = data
    if resume is not None and not resume.is_file():
        raise typer.BadParameter(f"--resume {resume}: no such file")
    resumable = resume or log_dir / f"{arch}.resume.pt"
    paths = RunPaths(out or default_checkpoint(arch), resumable, Path("var/cache/lagrangian"))
    try:
        state = run_sitting(
            folders,
            get_ingest_settings(),
            config,
            train_config,
            paths,
            block_frames,
            extra_crops,
            resume=resume is not None,
            init_from=init_from,
            hold_out=hold_out,
            train_fraction=train_fraction,
            validation_stride=validation_stride,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / f"{arch}-history.json").write_text(json.dumps(state.history, indent=2))
    (log_dir / f"{arch}-sittings.json").write_text(json.dumps(state.sittings, indent=2))
    typer.echo(
        f"step {state.step}, {state.samples_seen} samples, best validation score "
        f"{state.best_score:.3f} at step {state.best_step} -> {paths.checkpoint}; "
        f"resume with --resume {resumable}"
    )


def synth_corpus(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the events (one folder each).")],
    events: Annotated[int, typer.Option("--events", min=1, max=10_000)] = 40,
    frames: Annotated[int, typer.Option("--frames", min=20, max=10_000)] = 60,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Write synthetic radar events for pre-training (varied motion, growth and decay)."""
    from model.training.pretraining import write_corpus

    folders = write_corpus(out_dir, events, frames, seed)
    typer.echo(f"wrote {len(folders)} events of {frames} frames to {out_dir}")
