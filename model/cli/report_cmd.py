"""``nowcast model-card`` and ``nowcast experiments moving-digits``: reports."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from model.paths import DEFAULT_CHECKPOINT, MODEL_CARD, TRAINING_LOGS

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


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
    attribution: Annotated[
        Path | None,
        typer.Option(
            "--attribution",
            help="JSON of python -m model.experiments.smoothing_baselines: where the gain over "
            "extrapolation comes from.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    cross_validation: Annotated[
        Path | None,
        typer.Option(
            "--cross-validation",
            help="JSON of python -m model.experiments.fold_scores: the fold runs on the "
            "training events they held out.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    independent: Annotated[
        list[Path] | None,
        typer.Option(
            "--independent",
            help="evaluate --crops --json output on radar no training or choice has seen "
            "(repeatable, one per method).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Write the model card from the checkpoint's metadata and evaluation JSONs."""
    from model.evaluation.card_text import render_card
    from model.nets.checkpoint import load_checkpoint
    from model.nets.network import count_parameters

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
        json.loads(attribution.read_text()) if attribution else None,
        json.loads(cross_validation.read_text()) if cross_validation else None,
        [json.loads(p.read_text()) for p in independent or []],
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
