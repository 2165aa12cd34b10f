"""Cross-validation over training-event folds: does the network beat its zero start on events
it never saw?

The validation split (55 windows, most of its late rain flowing in from beyond the grid) cannot
tell at 2 and 5 mm/h whether the Lagrangian ConvLSTM's learned growth, decay and smoothing beat
its zero start, the extrapolation with the same edge inflow. Folds of the training events can:
each fold run (``nowcast train --hold-out-fold K/N``, selected on the validation split as
usual) is scored here on the centre-crop windows of the training blocks of the events it held
out, beside the zero start and pysteps' extrapolation on the same windows; the folds' contingency
tables are then pooled (each held-out window scored once, by the run that never saw it).

    python -m model.experiments.fold_scores ../shared/data/radar \
        --checkpoint var/runs/cv/fold0.safetensors --checkpoint var/runs/cv/fold1.safetensors \
        --checkpoint var/runs/cv/fold2.safetensors --json docs/evaluation/cv-folds.json

Each checkpoint names its fold and held-out events (its ``held_out`` meta). Recorded in
docs/evaluation/training-choices.md.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from model.experiments.smoothing_baselines import N_LEADS, accumulate, blur, network, summary

ZERO_START = "zero start (extrapolation, edge inflow)"
EXTRAPOLATION = "extrapolation (pysteps, inflow zero)"
NETWORK = "fold network"
CRITERIA = ("csi_0_5", "csi_2", "csi_5")


def verdict(pooled: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """Whether the pooled fold networks are no worse than the zero start: CSI at 0.5, 2 and
    5 mm/h each, and rain MSE (lower is better)."""
    net, zero = pooled[NETWORK], pooled[ZERO_START]
    out = {key: net[key] >= zero[key] for key in CRITERIA}
    out["rain_mse"] = net["rain_mse"] <= zero["rain_mse"]
    return out


def held_out_set(
    events: list[Any], checkpoint: Path, cache: Path
) -> tuple[dict[str, Any], Any, list[Any], Any]:
    """A fold run's held-out windows: the centre-crop windows of the training blocks of the
    events it left out (``events``: the loaded events, centre crops).

    Returns:
        ``(meta, config, refs, data)``: the checkpoint's meta (``held_out`` names the fold), its
        `model.nets.config.NetworkConfig`, the window references and their
        `model.training.lagrangian_validation.ValidationSet` (read from the window ``cache``).

    Raises:
        ValueError: the checkpoint is not a fold run (no ``held_out`` meta).
    """
    from model.data.split import split_windows
    from model.nets.checkpoint import load_checkpoint
    from model.training.lagrangian_data import lagrangian_windows
    from model.training.lagrangian_validation import validation_set

    _, config, meta = load_checkpoint(checkpoint)
    held_out = meta.get("held_out")
    if not held_out:
        raise ValueError(f"{checkpoint} is not a fold run (no held_out meta: --hold-out-fold)")
    names = set(held_out["events"])
    # the run's own blocks: its held-out events' training blocks, none of their windows seen
    block_frames = meta["training_data"]["block_frames"]
    windows, _ = split_windows(events, config.in_frames, N_LEADS, block_frames)
    refs = [w for w in windows["train"] if events[w.event_index].name in names]
    data = validation_set(
        lagrangian_windows(events, refs, config.in_frames, N_LEADS, cache, wet_only=False)
    )
    return meta, config, refs, data


def centre_events(folders: list[Path]) -> tuple[list[Any], Any]:
    """The events under ``folders`` as the fold runs saw them (centre crops, no extra crops),
    and the normaliser of their first site."""
    from ingest.ingestor import norm_params_for
    from ingest.settings import get_ingest_settings
    from model.data.views import load_all_views

    settings = get_ingest_settings()
    events, _views = load_all_views(folders, settings, extra_crops=False)
    return events, norm_params_for(settings, events[0].site_id)


def held_out_sets(
    events: list[Any], checkpoints: list[Path], cache: Path, parser: argparse.ArgumentParser
) -> Iterator[tuple[Path, dict[str, Any], Any, list[Any], Any]]:
    """`held_out_set` of each fold checkpoint in turn, as ``(path, meta, config, refs,
    data)``, one in memory at a time; a checkpoint that is not a fold run is a usage error."""
    for path in checkpoints:
        try:
            meta, config, refs, data = held_out_set(events, path, cache)
        except ValueError as error:
            parser.error(str(error))
        yield path, meta, config, refs, data


def main(argv: Sequence[str] | None = None) -> None:
    from model.verification.scores import ScoreAccumulator

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--checkpoint", action="append", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("var/cache/lagrangian"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    events, norm = centre_events(args.folders)
    pooled = {name: ScoreAccumulator(N_LEADS) for name in (NETWORK, ZERO_START, EXTRAPOLATION)}
    folds = []
    for path, meta, config, refs, data in held_out_sets(
        events, args.checkpoint, args.cache, parser
    ):
        held_out = meta["held_out"]
        names = set(held_out["events"])
        fold_scores = {}
        for name, (forecast, inflow) in {
            NETWORK: (network(path), config.inflow),
            ZERO_START: (blur(0.0), "edge"),
            EXTRAPOLATION: (blur(0.0), "zero"),
        }.items():
            scores = ScoreAccumulator(N_LEADS)
            accumulate(scores, forecast, data, norm, inflow)
            pooled[name].merge(scores)
            fold_scores[name] = summary(scores)
        folds.append(
            {
                "checkpoint": str(path),
                "fold": held_out["fold"],
                "folds": held_out["folds"],
                "events": sorted(names),
                "windows": len(refs),
                "step": meta.get("step"),  # the selected step (0: the zero start)
                "samples_seen": meta.get("samples_seen"),
                "training_minutes": meta.get("training_minutes"),
                "run": {k: meta.get("run_so_far", {}).get(k) for k in ("minutes", "samples_seen")},
                "scores": fold_scores,
            }
        )
        print(f"fold {held_out['fold']}: {len(refs)} windows", flush=True)
        for name, row in fold_scores.items():
            print(f"  {name}: " + json.dumps({k: v for k, v in row.items() if "by_lead" not in k}))
    pooled_scores = {name: summary(acc) for name, acc in pooled.items()}
    results: dict[str, Any] = {
        "folds": folds,
        "pooled": pooled_scores,
        "network_no_worse_than_zero_start": verdict(pooled_scores),
    }
    print("pooled:", json.dumps(pooled_scores), results["network_no_worse_than_zero_start"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
