"""Command-line verbs of the model stage: train, calibrate, evaluate, model-card."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from model.paths import DEFAULT_CHECKPOINT, MODEL_CARD, TRAINING_LOGS, default_checkpoint

if TYPE_CHECKING:
    from ingest.normalize import NormParams
    from model.events import Event
    from model.lagrangian_train import LagrangianTrainConfig
    from model.methods import NowcastMethod

log = logging.getLogger(__name__)


def _load_events(roots: list[Path]) -> list[Event]:
    from ingest.settings import get_settings
    from model.events import event_folders, load_event

    settings = get_settings()
    events = []
    for folder in event_folders(roots):
        events.append(load_event(folder, settings, name=f"{folder.parent.name}/{folder.name}"))
    if not events:
        raise typer.BadParameter(f"no frames under {[str(r) for r in roots]}")
    return events


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
) -> None:
    """Train a network of the family on real radar events (time-block split).

    ``convlstm`` (the Lagrangian ConvLSTM) trains by sittings: ``--max-minutes`` per sitting,
    ``--resume`` continues one; the others train by epochs.
    """
    from ingest.ingestor import norm_params_for
    from ingest.settings import get_settings
    from model.architectures import LAGRANGIAN, default_config
    from model.config import ARCHITECTURES
    from model.events import describe_events
    from model.split import split_windows
    from model.train import TrainConfig
    from model.train import train as run_training

    if arch not in ARCHITECTURES:
        raise typer.BadParameter(f"--arch {arch!r}: valid are {', '.join(ARCHITECTURES)}")
    if arch in LAGRANGIAN:
        from model.lagrangian_train import LagrangianTrainConfig

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
            folders, arch, hidden, train_config, out, log_dir, resume, block_frames, extra_crops
        )
        return
    events = _load_events(folders)
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
    try:
        result = run_training(
            events,
            windows,
            config,
            TrainConfig(
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
            ),
            norm_params_for(get_settings(), events[0].site_id),
            out,
            log_dir,
            description,
        )
    except ValueError as exc:  # the run's settings do not fit the network or the data
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(
        f"best epoch {result.best_epoch}, validation loss {result.best_validation_loss:.4f}, "
        f"{result.samples_seen} samples in {result.seconds / 60:.1f} min -> {out}"
    )


def _train_lagrangian(
    folders: list[Path],
    arch: str,
    hidden: str | None,
    train_config: LagrangianTrainConfig,
    out: Path | None,
    log_dir: Path,
    resume: Path | None,
    block_frames: int,
    extra_crops: bool,
) -> None:
    """One sitting of a Lagrangian network (`model.lagrangian_run`), its logs in ``log_dir``."""
    from ingest.settings import get_settings
    from model.architectures import default_config
    from model.lagrangian_run import RunPaths, run_sitting

    try:
        config = default_config(
            arch,
            hidden_channels=tuple(int(h) for h in hidden.split(",")) if hidden else None,
            frame_cells=get_settings().target_cells,  # the normalised grid of the settings
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if resume is not None and not resume.is_file():
        raise typer.BadParameter(f"--resume {resume}: no such file")
    resumable = resume or log_dir / f"{arch}.resume.pt"
    paths = RunPaths(out or default_checkpoint(arch), resumable, Path("var/cache/lagrangian"))
    try:
        state = run_sitting(
            folders,
            get_settings(),
            config,
            train_config,
            paths,
            block_frames,
            extra_crops,
            resume=resume is not None,
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


def calibrate(
    folders: Annotated[
        list[Path],
        typer.Argument(
            help="The event folders the checkpoint was trained on.", exists=True, file_okay=False
        ),
    ],
    checkpoint: Annotated[Path, typer.Option("--checkpoint")] = DEFAULT_CHECKPOINT,
    quantiles: Annotated[int, typer.Option("--quantiles", min=2)] = 201,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Train-block CV folds.")] = 5,
    json_out: Annotated[Path | None, typer.Option("--json", help="The report as JSON.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only.")] = False,
) -> None:
    """Fit the per-lead probability matching on the train split; judge it on validation.

    The checkpoint is rewritten with the tables and the validation figures in its meta;
    ``use`` is set only if it raised the validation CSI at 0.5 mm/h (mean over the leads
    whose observations hold an event).
    """
    from datetime import UTC

    from ingest.ingestor import norm_params_for
    from ingest.settings import get_settings
    from model.calibrate import collect_forecasts, fit_and_judge
    from model.checkpoint import update_meta
    from model.methods.convlstm import learned_method
    from model.split import split_windows

    raw = learned_method(checkpoint, calibrated=False)
    data = raw.meta.get("training_data") or {}
    block_frames = data.get("block_frames")
    if not block_frames:
        raise typer.BadParameter(f"{checkpoint} does not record its training split")
    events = _load_events(folders)
    c = raw.config
    windows, blocks = split_windows(events, c.in_frames, c.out_frames, block_frames)
    if [b.__dict__ for b in blocks] != data.get("blocks"):
        raise typer.BadParameter(
            "these events do not give the checkpoint's time blocks: its train split would not "
            "be the windows it was trained on"
        )
    norm = norm_params_for(get_settings(), events[0].site_id)
    typer.echo(
        f"forecasting {len(windows['train'])} train, {len(windows['validation'])} "
        "validation windows (raw network)"
    )
    train = collect_forecasts(raw, events, windows["train"], c.in_frames, c.out_frames)
    validation = collect_forecasts(raw, events, windows["validation"], c.in_frames, c.out_frames)
    tables, record = fit_and_judge(train, validation, block_frames, norm, quantiles, folds)
    record["fitted_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    judged, cross = record["validation"], record["train_block_cross_validation"]
    for name, part in (("validation", judged), ("train-block CV", cross)):
        typer.echo(
            f"{name}: mean CSI(0.5) raw {part['raw']['mean_csi']} over "
            f"{part['raw']['defined_leads']} defined leads, calibrated "
            f"{part['calibrated']['mean_csi']} over {part['calibrated']['defined_leads']}; "
            f"over the leads with observed events {part['leads_with_observed_events']}: "
            f"raw {part['mean_csi_raw']}, calibrated {part['mean_csi_calibrated']}"
        )
    typer.echo(f"use calibration: {record['use']} ({record['decision_rule']})")
    if json_out:
        json_out.write_text(json.dumps(record, indent=2))
        typer.echo(f"wrote {json_out}")
    if not dry_run:
        update_meta(checkpoint, {"calibration": {**tables.to_dict(), **record}})
        typer.echo(f"rewrote {checkpoint}")


def evaluate(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(help="Event folders (with --compare: evaluation JSON files).", exists=True),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="convlstm, eulerian-convlstm, saconvlstm, fclstm, persistence, "
            "extrapolation or sprog.",
        ),
    ] = "convlstm",
    json_out: Annotated[Path | None, typer.Option("--json", help="Scores as JSON.")] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Scores versus lead time (PNG).")
    ] = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="Draw the given evaluation JSONs together (--plot).")
    ] = False,
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="Learned methods; default: the method's shipped one."),
    ] = None,
    variant: Annotated[str, typer.Option("--variant", help="rover1, rover2, rover3")] = "rover1",
    calibrated: Annotated[
        bool,
        typer.Option(
            "--calibrated/--raw",
            help="Learned methods: apply the checkpoint's calibration, or not.",
        ),
    ] = True,
    split: Annotated[
        str,
        typer.Option(
            "--split", help="all, or only the train/validation/test blocks of the time-block split."
        ),
    ] = "all",
    block_frames: Annotated[int, typer.Option("--block-frames", min=20)] = 30,
    strip: Annotated[Path | None, typer.Option("--strip", help="Forecast strip PNG.")] = None,
    strip_time: Annotated[
        str | None, typer.Option("--strip-time", help="Issue time for --strip (ISO, UTC).")
    ] = None,
) -> None:
    """Verify a method offline on events: CSI/FAR/POD per lead, MSE, correlation (JSON, PNG)."""
    from model.plots import plot_scores

    if compare:
        reports = [json.loads(p.read_text()) for p in folders or []]
        if plot is None:
            raise typer.BadParameter("--compare needs --plot")
        plot_scores(reports, plot)
        typer.echo(f"wrote {plot}")
        return
    if not folders:
        raise typer.BadParameter("give event folders, or --compare with JSON files")
    from ingest.ingestor import norm_params_for
    from ingest.settings import get_settings
    from model.evaluate import evaluate_method, observed_event_cells, report
    from model.methods import LEARNED, get_method

    options: dict[str, object] = {}
    if method in LEARNED:
        options.update(checkpoint=checkpoint, calibrated=calibrated)
    elif method == "extrapolation":
        options["variant"] = variant
    try:
        nowcaster = get_method(method, **options)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    events = _load_events(folders)
    norm = norm_params_for(get_settings(), events[0].site_id)
    windows = None
    if split != "all":
        from model.split import split_windows

        by_split, _ = split_windows(events, 5, 15, block_frames)
        if split not in by_split:
            raise typer.BadParameter(f"--split must be all or one of {sorted(by_split)}")
        windows = by_split[split]
    scores, count = evaluate_method(nowcaster, events, norm, windows=windows)
    label = f"{method}-raw" if method in LEARNED and not calibrated else method
    result = report(label, scores, count, events)
    result["split"] = split if split == "all" else f"{split} (blocks of {block_frames} frames)"
    result["observed_event_cells_by_event"] = observed_event_cells(events, norm, windows=windows)
    method_meta = getattr(nowcaster, "meta", None)
    if method_meta is not None:
        result["calibration_applied"] = method_meta.get("calibration_applied", False)
    csi = [c for c in result["csi"]["0.5"] if c is not None]
    typer.echo(
        f"{label}: {count} forecasts over {len(events)} events; mean CSI(0.5) "
        f"{sum(csi) / len(csi) if csi else float('nan'):.3f}"
    )
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))
        typer.echo(f"wrote {json_out}")
    if plot:
        plot_scores([result], plot)
        typer.echo(f"wrote {plot}")
    if strip:
        _write_strip(nowcaster, label, events, norm, strip, strip_time)


def _write_strip(
    nowcaster: NowcastMethod,
    method: str,
    events: list[Event],
    norm: NormParams,
    out_png: Path,
    strip_time: str | None,
) -> None:
    from model.evaluate import forecast_windows, grey_to_mmh
    from model.plots import plot_strip

    wanted = datetime.fromisoformat(strip_time.replace("Z", "+00:00")) if strip_time else None
    for event in events:
        for start in event.window_starts(5, 15):
            issue = event.times[start + 4]
            if wanted is None or issue == wanted:
                forecast = forecast_windows(nowcaster, event, [start], 5, 15)[0]
                plot_strip(
                    grey_to_mmh(event.grey[start : start + 5], norm),
                    grey_to_mmh(event.grey[start + 5 : start + 20], norm),
                    {method: grey_to_mmh(forecast, norm)},
                    [event.cadence_min * (k + 1) for k in range(15)],
                    f"{event.name} issued {issue:%Y-%m-%d %H:%MZ}",
                    out_png,
                )
                typer.echo(f"wrote {out_png}")
                return
    raise typer.BadParameter(f"no forecastable issue time {strip_time} in the events")


def model_card(
    evaluations: Annotated[
        list[Path],
        typer.Argument(help="evaluate --json outputs to tabulate.", exists=True, dir_okay=False),
    ],
    checkpoint: Annotated[Path, typer.Option("--checkpoint")] = DEFAULT_CHECKPOINT,
    out: Annotated[Path, typer.Option("--out")] = MODEL_CARD,
    trained_on: Annotated[
        str | None, typer.Option("--trained-on", help="Hardware, when the checkpoint lacks it.")
    ] = None,
    command: Annotated[
        list[str] | None, typer.Option("--command", help="A command that made these files.")
    ] = None,
    training_logs: Annotated[
        Path, typer.Option("--training-logs", help="Folder of the runs' JSON epoch logs.")
    ] = TRAINING_LOGS,
    other_checkpoints: Annotated[
        list[Path] | None,
        typer.Option("--other", help="Another network's checkpoint to describe (repeatable)."),
    ] = None,
) -> None:
    """Write the model card from the checkpoint's metadata and evaluation JSONs."""
    from model.card_text import render_card
    from model.checkpoint import load_checkpoint
    from model.network import count_parameters

    model, config, meta = load_checkpoint(checkpoint)
    reports = [json.loads(p.read_text()) for p in evaluations]
    logs = {p.name: json.loads(p.read_text()) for p in sorted(training_logs.glob("*.json"))}
    others = []
    for path in other_checkpoints or []:
        other, other_config, other_meta = load_checkpoint(path)
        others.append(
            {
                "name": other_config.architecture,
                "config": other_config.to_dict(),
                "params": count_parameters(other),
                "meta": other_meta,
            }
        )
    text = render_card(
        meta,
        config.to_dict(),
        count_parameters(model),
        reports,
        command or [],
        trained_on,
        logs,
        others,
    )
    out.write_text(text)
    typer.echo(f"wrote {out}")


def moving_digits(
    out: Annotated[Path, typer.Option("--out", help="Folder for table, JSON and PNG.")] = Path(
        "docs/moving-digits"
    ),
    samples: Annotated[
        int, typer.Option("--samples", min=16, help="Training sequences per variant.")
    ] = 4000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 16,
    test_sequences: Annotated[int, typer.Option("--test-sequences", min=1)] = 256,
    variants: Annotated[
        list[str] | None, typer.Option("--variant", help="Only these variants (repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    bf16: Annotated[
        bool, typer.Option("--bf16", help="bfloat16 autocast in training and scoring.")
    ] = False,
    weights_dir: Annotated[
        Path | None,
        typer.Option("--weights-dir", help="Also save each trained variant here (checkpoints)."),
    ] = None,
    from_weights: Annotated[
        bool,
        typer.Option(
            "--from-weights",
            help="Score the variants saved in --weights-dir instead of training them.",
        ),
    ] = False,
) -> None:
    """Train small ConvLSTM / FC-LSTM variants on moving digits; table and predictions PNG."""
    import shlex
    import sys

    from model.experiments.moving_digits import VARIANTS, run_experiment, write_outputs

    chosen = tuple(variants or VARIANTS)
    try:
        results, reference, test, forecasts = run_experiment(
            samples, batch_size, test_sequences, seed, chosen, bf16, weights_dir, from_weights
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    command = "nowcast " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    for path in write_outputs(results, reference, test, forecasts, out, command):
        typer.echo(f"wrote {path}")


def synth_corpus(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the events (one folder each).")],
    events: Annotated[int, typer.Option("--events", min=1, max=10_000)] = 40,
    frames: Annotated[int, typer.Option("--frames", min=20, max=10_000)] = 60,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Write synthetic radar events for pre-training (varied motion, growth and decay)."""
    from model.pretraining import write_corpus

    folders = write_corpus(out_dir, events, frames, seed)
    typer.echo(f"wrote {len(folders)} events of {frames} frames to {out_dir}")


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command("synth-corpus")(synth_corpus)
    app.command()(calibrate)
    app.command()(evaluate)
    app.command("model-card")(model_card)
    experiments = typer.Typer(help="The method's experiments beside radar.", no_args_is_help=True)
    experiments.command("moving-digits")(moving_digits)
    app.add_typer(experiments, name="experiment")
