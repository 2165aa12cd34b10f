"""Benchmark of one nowcast (5 -> 15 frames, 100 x 100): ConvLSTM against pysteps extrapolation.

    python bench/bench_inference.py [--checkpoint PATH] [--repeat 10] [--json OUT.json]

Both run in the same process on the same input frames (real BOM frames when
../shared/data/radar is present, else synthetic), so the ratios compare like with like.
ConvLSTM: fp32 and bf16 autocast, batch 1 and larger batches (time per nowcast); the skill
check compares bf16 with fp32 forecasts (max grey difference, CSI at 0.5 mm/h).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from timing import timed_s

REAL_EVENT = Path(__file__).resolve().parents[1].parent / "shared/data/radar/bom-melbourne-6min"


def median_s(fn: Callable[[], object], repeat: int) -> float:
    return statistics.median(timed_s(fn, repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--batches", default="1,2,4,8,16")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from ingest.cf_writer import write_synthetic_feed
    from ingest.normalize import NormParams
    from ingest.settings import Settings
    from model.evaluate import grey_to_mmh
    from model.events import load_event
    from model.hardware import describe_machine
    from model.methods import get_method
    from model.scores import ScoreAccumulator

    with tempfile.TemporaryDirectory() as tmp:
        folder = REAL_EVENT
        if not folder.is_dir():
            folder = Path(tmp) / "synthetic"
            write_synthetic_feed(folder, 20, shape=(512, 512))
        event = load_event(folder, Settings())
    frames, truth = event.grey[:5][None], event.grey[5:20][None]
    options = {"checkpoint": args.checkpoint} if args.checkpoint else {}
    extrapolation = get_method("extrapolation")
    results: dict[str, object] = {
        "machine": describe_machine(),
        "torch_threads": torch.get_num_threads(),
        "frames": str(folder),
    }
    t_extrap = median_s(lambda: extrapolation(frames, 15), args.repeat)
    results["extrapolation_s"] = t_extrap
    for precision in ("fp32", "bf16"):
        method = get_method("convlstm", bf16=precision == "bf16", **options)
        per_batch = {}
        for batch in (int(b) for b in args.batches.split(",")):
            inputs = np.repeat(frames, batch, axis=0)
            run = functools.partial(method, inputs, 15)
            per_batch[batch] = median_s(run, args.repeat) / batch
        best = min(per_batch, key=lambda b: per_batch[b])
        results[precision] = {
            "per_nowcast_s_by_batch": per_batch,
            "batch1_s": per_batch[1],
            "batch1_over_extrapolation": per_batch[1] / t_extrap,
            "best_batch": best,
            "best_per_nowcast_s": per_batch[best],
            "best_over_extrapolation": per_batch[best] / t_extrap,
        }
    fp32 = get_method("convlstm", **options)(frames, 15)
    bf16 = get_method("convlstm", bf16=True, **options)(frames, 15)
    norm = NormParams()
    csi = {}
    for name, forecast in (("fp32", fp32), ("bf16", bf16)):
        acc = ScoreAccumulator(15)
        acc.add(grey_to_mmh(forecast, norm), grey_to_mmh(truth, norm))
        values = [v for v in acc.scores()["csi"]["0.5"] if v is not None]
        csi[name] = float(np.mean(values)) if values else None
    results["bf16_vs_fp32"] = {
        "max_abs_grey_diff": float(np.abs(fp32 - bf16).max()),
        "mean_csi_0_5": csi,
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
