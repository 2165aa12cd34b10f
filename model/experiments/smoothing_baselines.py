"""Hand-made smoothings of the extrapolation nowcast against the Lagrangian ConvLSTM.

How much of the learned model's gain could a one- or two-parameter smoothing of the
extrapolation give, and do the validation and test splits agree on it? Each candidate changes
the last input frame (in Lagrangian coordinates, i.e. at the issue time) per lead k, and the
result is moved k steps along the motion field exactly as the served model's output is
(`model.advection.lagrangian.to_eulerian`):

- ``blur c``: a Gaussian blur of the rain rate with sigma = c * k cells
  (`model.advection.rain_blur.rain_blurs`; the issue's "blur that widens with lead");
- ``blur+gain c g``: that blur, then + g * k / 15 grey on the wet cells (a rain-area bias);
- ``quantile c q``: the q-th percentile of the grey levels in a disk of radius c * k cells,
  i.e. a neighbourhood probability of exceedance thresholded at 1 - q at every threshold;
- the checkpoints given with ``--checkpoint`` (``path`` or ``label=path``; as served, through
  their residual gate where one is in use; moved with their own ``inflow``, or with ``#zero`` /
  ``#edge`` after the path);
- ``... edge inflow``: extrapolation and the light blur with rain from beyond the grid read at
  the grid's edge (`model.advection.motion.INFLOWS`) instead of pysteps' 0: how much of a
  network served with "edge" inflow is the inflow alone.

Scores are the pooled means over the 15 leads (CSI at 0.5, 2 and 5 mm/h, rain MSE) on the
validation and the test windows of `model.data.split` (``--splits``; the training blocks' centre
crops too with ``train``), from the window cache of ``nowcast train``.

    python -m model.experiments.smoothing_baselines ../shared/data/radar \
        --checkpoint model/checkpoints/convlstm.safetensors --json var/smoothing.json

Recorded in docs/evaluation/training-choices.md.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

LagrangianForecast = Callable[[np.ndarray], np.ndarray]
"""(N, in, H, W) Lagrangian grey inputs -> (N, out, H, W) grey at the issue time."""

N_LEADS = 15


def blur(c: float, gain_grey: float = 0.0) -> LagrangianForecast:
    """Rain-rate blur with sigma ``c * k`` cells at lead k, plus ``gain_grey * k / 15`` if wet."""
    import torch

    from model.advection.rain_blur import rain_blurs

    def forecast(inputs: np.ndarray) -> np.ndarray:
        last = torch.from_numpy(inputs[:, -1:].astype(np.float32))
        leads = []
        for k in range(1, N_LEADS + 1):
            out = rain_blurs(last, (c * k,)) if c * k >= 0.3 else last
            leads.append(torch.where(out > 0, out + gain_grey * k / N_LEADS, out))
        return torch.cat(leads, dim=1).clamp(0.0, 1.0).numpy()

    return forecast


def quantile(c: float, q: float) -> LagrangianForecast:
    """The ``q``-th percentile of the grey levels in a disk of radius ``c * k`` cells."""
    from scipy import ndimage

    def forecast(inputs: np.ndarray) -> np.ndarray:
        last = inputs[:, -1].astype(np.float32)
        out = np.repeat(last[:, None], N_LEADS, axis=1)
        for k in range(1, N_LEADS + 1):
            radius = round(c * k)
            if radius < 1:
                continue
            yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
            disk = yy**2 + xx**2 <= radius**2
            for n in range(len(last)):
                out[n, k - 1] = ndimage.percentile_filter(
                    last[n], q, footprint=disk, mode="nearest"
                )
        return out

    return forecast


def network(checkpoint: Path, gated: bool = False) -> LagrangianForecast:
    """The Lagrangian network of ``checkpoint`` (its output before the advection); ``gated``:
    through the checkpoint's residual gate where one is marked for use, as served
    (`model.nets.residual_gate`)."""
    import torch

    from model.nets.checkpoint import load_checkpoint
    from model.nets.residual_gate import apply_residual_gate, stored_gate

    model, config, meta = load_checkpoint(checkpoint)
    gate = stored_gate(meta, config.out_frames) if gated else None

    def forecast(inputs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            fields = model(torch.from_numpy(inputs.astype(np.float32))).float().numpy()
        return fields if gate is None else apply_residual_gate(fields, inputs[:, -1], gate)

    return forecast


def score(
    forecast: LagrangianForecast, data: Any, norm: Any, inflow: str = "zero"
) -> dict[str, Any]:
    """Pooled 15-lead means of ``forecast`` on a `model.training.lagrangian_train.ValidationSet`,
    moved with ``inflow``."""
    from model.verification.scores import ScoreAccumulator

    scores = ScoreAccumulator(N_LEADS)
    accumulate(scores, forecast, data, norm, inflow)
    return summary(scores)


def accumulate(
    scores: Any, forecast: LagrangianForecast, data: Any, norm: Any, inflow: str = "zero"
) -> None:
    """Add ``forecast``'s contingency tables on ``data``, moved with ``inflow``, to ``scores``
    (a `model.verification.scores.ScoreAccumulator` of `N_LEADS` leads)."""
    from model.advection.lagrangian import to_eulerian
    from model.verification.scores import grey_to_mmh

    for i in range(0, len(data.inputs), 16):
        lagrangian = forecast(data.inputs[i : i + 16])
        eulerian = np.stack(
            [
                to_eulerian(f, v, inflow=inflow)
                for f, v in zip(lagrangian, data.velocity[i : i + 16], strict=True)
            ]
        )
        scores.add(grey_to_mmh(eulerian, norm), grey_to_mmh(data.observed[i : i + 16], norm))


def summary(scores: Any) -> dict[str, Any]:
    """The pooled 15-lead means of a `model.verification.scores.ScoreAccumulator`: CSI at 0.5,
    2 and 5 mm/h, rain MSE, and CSI(0.5) lead by lead."""
    from model.training.lagrangian_validation import mean_csi, mean_rain_mse

    pooled = scores.scores()
    return {
        "csi_0_5": round(mean_csi(pooled, "0.5"), 4),
        "csi_2": round(mean_csi(pooled, "2.0"), 4),
        "csi_5": round(mean_csi(pooled, "5.0"), 4),
        "rain_mse": round(mean_rain_mse(pooled), 3),
        "csi_0_5_by_lead": [round(v or 0.0, 3) for v in pooled["csi"]["0.5"]],
    }


def candidates(checkpoints: list[str]) -> dict[str, tuple[LagrangianForecast, str]]:
    """Every candidate of the module docstring, by name: (forecast, inflow). ``checkpoints``:
    paths, or ``label=path`` to name one; ``path#edge`` moves it with that inflow instead of
    its own (e.g. older weights served with the edge inflow)."""
    from model.nets.checkpoint import read_config

    out: dict[str, tuple[LagrangianForecast, str]] = {"extrapolation": (blur(0.0), "zero")}
    out.update({f"blur {c}": (blur(c), "zero") for c in (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)})
    out.update(
        {f"blur+gain {c} {g}": (blur(c, g), "zero") for c in (0.3, 0.5) for g in (0.02, 0.05)}
    )
    out.update(
        {f"quantile {c} {q}": (quantile(c, q), "zero") for c in (0.3, 0.6) for q in (50, 65, 80)}
    )
    out["extrapolation, edge inflow"] = (blur(0.0), "edge")
    out["blur 0.3, edge inflow"] = (blur(0.3), "edge")
    for spec in checkpoints:
        label, _, target = spec.rpartition("=")
        path, _, inflow = target.partition("#")
        out[label or path] = (network(Path(path), gated=True), inflow or read_config(path).inflow)
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
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="PATH, LABEL=PATH or LABEL=PATH#INFLOW (repeatable)",
    )
    parser.add_argument("--cache", type=Path, default=Path("var/cache/lagrangian"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--splits",
        nargs="+",
        default=["validation", "test"],
        choices=["train", "validation", "test"],
    )
    parser.add_argument(
        "--only", default=None, help="comma-separated prefixes: the candidates to score"
    )
    args = parser.parse_args(argv)
    settings = get_ingest_settings()
    events, _views = load_all_views(args.folders, settings, extra_crops=False)
    windows, _blocks = split_windows(events, 5, N_LEADS, 30)
    norm = norm_params_for(settings, events[0].site_id)
    splits = {
        name: validation_set(
            lagrangian_windows(events, windows[name], 5, N_LEADS, args.cache, wet_only=False)
        )
        for name in args.splits
    }
    results = {}
    for name, (forecast, inflow) in candidates(args.checkpoint).items():
        if args.only and not name.startswith(tuple(args.only.split(","))):
            continue
        results[name] = {
            split: score(forecast, data, norm, inflow) for split, data in splits.items()
        }
        row = {
            s: {k: v for k, v in r.items() if "by_lead" not in k} for s, r in results[name].items()
        }
        print(name, json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
