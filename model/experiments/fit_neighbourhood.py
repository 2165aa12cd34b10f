"""Fit the neighbourhood radius of ``convlstm-probability`` on the training blocks.

For each candidate ``radius_per_lead`` (cells per lead), the served ConvLSTM's forecasts of
the training windows (`model.data.split`, centre crops of the training blocks) become
neighbourhood probabilities (`model.methods.neighbourhood`), scored by the Brier score at 0.5
and 2 mm/h, pooled over windows and leads. The radius with the lowest mean of the two is the
method's default (`RADIUS_PER_LEAD_CELLS`). The validation and test splits play no part.

    python -m model.experiments.fit_neighbourhood ../shared/data/radar \\
        --json docs/evaluation/neighbourhood-fit.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

CANDIDATES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
THRESHOLDS = (0.5, 2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("roots", nargs="+", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--split", default="train")
    args = parser.parse_args()

    from ingest.ingestor import norm_params_for
    from ingest.settings import get_ingest_settings
    from model.data.events import load_events
    from model.data.split import split_windows
    from model.methods import get_method
    from model.methods.neighbourhood import neighbourhood_probabilities
    from model.verification.scores import grey_to_mmh

    settings = get_ingest_settings()
    events = load_events(args.roots, settings)
    norm = norm_params_for(settings, events[0].site_id)
    windows = split_windows(events, 5, 15, 30)[0][args.split]
    network = get_method("convlstm")
    sums = {c: np.zeros((len(THRESHOLDS), 15)) for c in CANDIDATES}
    observed = np.zeros((len(THRESHOLDS), 15))
    cells = 0
    for i in range(0, len(windows), 8):
        chunk = windows[i : i + 8]
        by_event = [(events[w.event_index], w.start) for w in chunk]
        shapes = {e.grey.shape[1:] for e, _ in by_event}
        for shape in shapes:
            part = [(e, s) for e, s in by_event if e.grey.shape[1:] == shape]
            inputs = np.stack([e.grey[s : s + 5] for e, s in part])
            truth = grey_to_mmh(np.stack([e.grey[s + 5 : s + 20] for e, s in part]), norm)
            rain = grey_to_mmh(network(inputs, 15), norm)
            valid = np.isfinite(truth)
            cells += int(valid[:, 0].sum())
            for j, threshold in enumerate(THRESHOLDS):
                event = (truth >= threshold).astype(np.float64)
                observed[j] += np.where(valid, event, 0.0).sum(axis=(0, 2, 3))
                for c in CANDIDATES:
                    p = neighbourhood_probabilities(rain, (threshold,), c)[:, :, 0]
                    sums[c][j] += np.where(valid, (p - event) ** 2, 0.0).sum(axis=(0, 2, 3))
    frequency = observed / cells
    climate = frequency * (1 - frequency)
    rows: list[dict[str, Any]] = []
    for c in CANDIDATES:
        brier = sums[c] / cells
        rows.append(
            {
                "radius_per_lead_cells": c,
                "brier": {str(t): brier[j].tolist() for j, t in enumerate(THRESHOLDS)},
                "brier_skill_mean": {
                    str(t): float(np.mean(1 - brier[j] / climate[j]))
                    for j, t in enumerate(THRESHOLDS)
                },
                "score": float(brier.mean()),
            }
        )
    best = min(rows, key=lambda r: r["score"])
    result = {
        "command": "python -m model.experiments.fit_neighbourhood "
        + " ".join(str(r) for r in args.roots)
        + (f" --split {args.split}" if args.split != "train" else ""),
        "split": args.split,
        "windows": len(windows),
        "chosen_radius_per_lead_cells": best["radius_per_lead_cells"],
        "rule": "lowest Brier score at 0.5 and 2 mm/h, mean over both thresholds and 15 leads",
        "candidates": rows,
    }
    for row in rows:
        print(
            f"r = {row['radius_per_lead_cells']:4} x lead: Brier {row['score']:.5f}, mean BSS "
            + ", ".join(f"{t} mm/h {v:.3f}" for t, v in row["brier_skill_mean"].items())
        )
    print(f"chosen: {best['radius_per_lead_cells']} cells per lead ({len(windows)} windows)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
