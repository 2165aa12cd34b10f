"""Where rain forms that ``convlstm-probability`` gives no chance: the diagnosis behind the
``new-echoes`` issue-time regime (docs/evaluation/probability-regimes.md, round 2).

On the training blocks or the validation split (never the test split), at 0.5 mm/h, with the
method's raw probabilities:
- ``far_by_edge``: per lead, the observed frequency at cells of zero probability more than
  `FAR_CELLS` beyond the neighbourhood of any forecast rain, by the cell's distance to the
  domain's edge or the coverage's (cells): rain there formed, it neither flowed in nor spread;
- ``windows``: per window, that frequency over leads 10 to 15 with the issue time's wet
  fraction and new-echo fraction (`model.verification.issue_regimes`), their correlations, and
  the frequency pooled over each ``new-echoes`` regime.

    python -m model.experiments.new_rain_diagnosis ../shared/data/radar --split train \\
        --json docs/evaluation/new-rain-train.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

FAR_CELLS = 10.0
THRESHOLD_MMH = 0.5
EDGE_BINS = (0, 5, 10, 20, 10_000)
LATE_LEADS = range(10, 16)


def edge_distance_cells(covered: np.ndarray) -> np.ndarray:
    """(H, W) bool coverage -> (H, W) distance (cells) to the grid's edge or the nearest
    uncovered cell, whichever is nearer."""
    from scipy.ndimage import distance_transform_edt

    rows, cols = np.indices(covered.shape)
    h, w = covered.shape
    edge = np.minimum.reduce([rows, cols, h - 1 - rows, w - 1 - cols]).astype(np.float64)
    return edge if covered.all() else np.minimum(edge, distance_transform_edt(covered))


def far_from_rain(rain_mmh: np.ndarray, lead: int) -> np.ndarray:
    """(H, W) forecast rain at ``lead`` (1-based) -> True more than `FAR_CELLS` beyond the
    neighbourhood (one cell per lead) of every cell at or above `THRESHOLD_MMH`."""
    from scipy.ndimage import distance_transform_edt

    wet = rain_mmh >= THRESHOLD_MMH
    if not wet.any():
        return np.ones_like(wet)
    return np.asarray(distance_transform_edt(~wet) - lead > FAR_CELLS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("roots", nargs="+", type=Path)
    parser.add_argument("--split", choices=("train", "validation"), default="train")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from ingest.ingestor import norm_params_for
    from ingest.settings import get_ingest_settings
    from model.data.events import load_events
    from model.data.split import split_windows
    from model.evaluation.evaluate import window_batches
    from model.methods import ProbabilisticMethod, get_method
    from model.verification.issue_regimes import issue_time_wet_fraction, new_echo_fraction
    from model.verification.scores import grey_to_mmh

    settings = get_ingest_settings()
    events = load_events(args.roots, settings)
    norm = norm_params_for(settings, events[0].site_id)
    bounds, zr = (norm.dbz_min, norm.dbz_max), (norm.zr_a, norm.zr_b)
    windows = split_windows(events, 5, 15, 30)[0][args.split]
    method = get_method("convlstm-probability")
    assert isinstance(method, ProbabilisticMethod)
    n_edge = len(EDGE_BINS) - 1
    cases, events_seen = np.zeros((15, n_edge)), np.zeros((15, n_edge))
    rows: list[dict[str, Any]] = []
    for inputs, truth, event in window_batches(events, norm, 5, 15, 8, windows):
        grey, probability = method.probabilities(inputs, 15, (THRESHOLD_MMH,), bounds, zr)
        forecast = grey_to_mmh(grey, norm)
        wet = issue_time_wet_fraction(inputs, bounds, zr)
        new = new_echo_fraction(inputs, bounds, zr)
        for b in range(len(inputs)):
            edge = np.digitize(edge_distance_cells(np.isfinite(inputs[b, -1])), EDGE_BINS) - 1
            late_cases = late_events = 0
            for k in range(15):
                observed = truth[b, k]
                zero = (probability[b, k, 0] == 0) & np.isfinite(observed)
                far = zero & far_from_rain(forecast[b, k], k + 1)
                rain = observed >= THRESHOLD_MMH
                for e in range(n_edge):
                    cases[k, e] += np.sum(far & (edge == e))
                    events_seen[k, e] += np.sum(far & (edge == e) & rain)
                if k + 1 in LATE_LEADS:
                    late_cases += int(far.sum())
                    late_events += int((far & rain).sum())
            rows.append(
                {
                    "event": event,
                    "wet_fraction": float(wet[b]),
                    "new_echo_fraction": float(new[b]),
                    "far_cases": late_cases,
                    "far_frequency": late_events / late_cases if late_cases else None,
                }
            )
    with np.errstate(invalid="ignore"):
        by_edge = events_seen / cases
    scored = [r for r in rows if r["far_frequency"] is not None]
    freq = np.array([r["far_frequency"] for r in scored])
    pooled = {}
    for name, pick in (
        ("quiet", lambda r: r["new_echo_fraction"] == 0),
        ("initiating", lambda r: r["new_echo_fraction"] > 0),
    ):
        part = [r for r in scored if pick(r)]
        n = sum(r["far_cases"] for r in part)
        hits = sum(r["far_frequency"] * r["far_cases"] for r in part)
        pooled[name] = {"windows": len(part), "far_frequency": hits / n if n else None}
    result = {
        "command": "python -m model.experiments.new_rain_diagnosis "
        + " ".join(str(r) for r in args.roots)
        + f" --split {args.split}",
        "split": args.split,
        "windows": len(rows),
        "threshold_mmh": THRESHOLD_MMH,
        "far_cells": FAR_CELLS,
        "edge_bins_cells": list(EDGE_BINS),
        "far_by_edge": {
            "frequency": [[None if np.isnan(v) else float(v) for v in lead] for lead in by_edge],
            "cases": cases.astype(int).tolist(),
        },
        "late_leads": list(LATE_LEADS),
        "correlation_with_far_frequency": {
            "wet_fraction": float(np.corrcoef(freq, [r["wet_fraction"] for r in scored])[0, 1]),
            "new_echo_fraction": float(
                np.corrcoef(freq, [r["new_echo_fraction"] for r in scored])[0, 1]
            ),
        },
        "by_new_echoes": pooled,
        "per_window": rows,
    }
    print(f"{args.split}: {len(rows)} windows; far-from-forecast-rain frequency at lead 15 by")
    for e in range(n_edge):
        print(f"  edge distance [{EDGE_BINS[e]}, {EDGE_BINS[e + 1]}) cells: {by_edge[14, e]:.4f}")
    print(f"  correlation over windows: {result['correlation_with_far_frequency']}")
    print(f"  by new-echoes regime, leads 10-15: {pooled}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
