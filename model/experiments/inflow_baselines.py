"""How much rain flows in from beyond the grid, and what reading it at the edge gives.

Extrapolation (pysteps' semi-Lagrangian trajectories of the shared motion field) of the last
frame, with the cells whose trajectory starts beyond the grid read as:

- ``zero``: 0, as pysteps (the `extrapolation` baseline);
- ``plain edge``: the nearest boundary cell of the last frame (scipy's "nearest" mode);
- ``edge, blur S``: the nearest boundary cell of the last frame's rain-rate blur of sigma S
  cells (``S = 8`` is `model.advection.motion`'s "edge" inflow, the served `convlstm`'s);
- ``mirror``: the last frame mirrored at its edge.

Per split (`model.data.split`; ``train`` = the training blocks' centre crops, every window):
the pooled 15-lead mean CSI at 0.5, 2 and 5 mm/h and rain MSE of each, and the share of the
observed cells at or above 0.5 mm/h whose trajectory came from beyond the grid, per lead.

    python -m model.experiments.inflow_baselines ../shared/data/radar \
        --json docs/evaluation/inflow-baselines.json

Recorded in docs/evaluation/training-choices.md.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import map_coordinates

N_LEADS = 15
SPLITS = ("train", "validation", "test")

Reader = Callable[[np.ndarray, list[np.ndarray]], np.ndarray]
"""(last frame (H, W), trajectory coordinates [rows, cols]) -> what cells beyond the grid read."""


def _read(mode: str, blur_sigma: float | None = None) -> Reader:
    from model.advection.motion import rain_blur_grey

    def reader(last: np.ndarray, coords: list[np.ndarray]) -> np.ndarray:
        source = last if blur_sigma is None else rain_blur_grey(last, blur_sigma)
        return map_coordinates(source, coords, mode=mode, order=1, prefilter=False)

    return reader


def readers() -> dict[str, Reader | None]:
    """Every inflow of the module docstring, by name (None: pysteps' 0)."""
    out: dict[str, Reader | None] = {"zero": None, "plain edge": _read("nearest")}
    out.update({f"edge, blur {s:g}": _read("nearest", s) for s in (2.0, 4.0, 8.0)})
    out["mirror"] = _read("mirror")
    return out


def score_split(data: Any, norm: Any) -> dict[str, Any]:
    """Scores of every inflow, and the inflow share per lead, on one `ValidationSet`."""
    from model.advection.motion import lead_displacements
    from model.training.lagrangian_validation import mean_rain_mse
    from model.verification.scores import ScoreAccumulator, grey_to_mmh

    options = readers()
    scores = {name: ScoreAccumulator(N_LEADS) for name in options}
    inflow_wet, wet = np.zeros(N_LEADS), np.zeros(N_LEADS)
    for n in range(len(data.inputs)):
        last = data.inputs[n, -1].astype(np.float64)
        h, w = last.shape
        cols, rows = np.meshgrid(np.arange(w), np.arange(h))
        displacements = lead_displacements(data.velocity[n], N_LEADS)
        observed_mmh = grey_to_mmh(data.observed[n], norm)
        forecasts: dict[str, list[np.ndarray]] = {name: [] for name in options}
        for k in range(N_LEADS):
            coords = [rows + displacements[k][1], cols + displacements[k][0]]
            inside = (coords[0] >= 0) & (coords[0] <= h - 1) & (coords[1] >= 0)
            inside &= coords[1] <= w - 1
            moved = map_coordinates(last, coords, mode="constant", order=1, prefilter=False)
            for name, reader in options.items():
                beyond = 0.0 if reader is None else reader(last, coords)
                forecasts[name].append(np.where(inside, moved, beyond))
            is_wet = observed_mmh[k] >= 0.5
            inflow_wet[k] += (is_wet & ~inside).sum()
            wet[k] += is_wet.sum()
        for name, fields in forecasts.items():
            grey = np.clip(np.stack(fields), 0.0, 1.0)[None]
            scores[name].add(grey_to_mmh(grey, norm), observed_mmh[None])
    out: dict[str, Any] = {"windows": len(data.inputs)}
    for name, acc in scores.items():
        pooled = acc.scores()

        def mean_csi(threshold: str, pooled: dict[str, Any] = pooled) -> float:
            return round(float(np.mean([v or 0.0 for v in pooled["csi"][threshold]])), 4)

        out[name] = {
            "csi_0_5": mean_csi("0.5"),
            "csi_2": mean_csi("2.0"),
            "csi_5": mean_csi("5.0"),
            "rain_mse": round(mean_rain_mse(pooled), 3),
        }
    out["wet_cells_flowing_in_by_lead"] = [round(v, 3) for v in inflow_wet / np.maximum(wet, 1)]
    return out


def main(argv: Sequence[str] | None = None) -> None:
    from ingest.ingestor import norm_params_for
    from ingest.settings import get_ingest_settings
    from model.data.split import split_windows
    from model.data.views import load_all_views
    from model.training.lagrangian_data import lagrangian_windows
    from model.training.lagrangian_validation import validation_set

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("var/cache/lagrangian"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    args = parser.parse_args(argv)
    settings = get_ingest_settings()
    events, _views = load_all_views(args.folders, settings, extra_crops=False)
    windows, _blocks = split_windows(events, 5, N_LEADS, 30)
    norm = norm_params_for(settings, events[0].site_id)
    results = {}
    for split in args.splits:
        refs = windows[split]
        data = validation_set(
            lagrangian_windows(events, refs, 5, N_LEADS, args.cache, wet_only=False)
        )
        results[split] = score_split(data, norm)
        print(split, json.dumps(results[split]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
