"""Benchmark of one nowcast (5 -> 15 frames, 100 x 100): ConvLSTM against pysteps extrapolation.

    python bench/bench_inference.py [--checkpoint PATH] [--repeat 10] [--json OUT.json]

Both run in the same process on the same input frames (real BOM frames when
../shared/data/radar is present, else synthetic), so the ratios compare like with like.
ConvLSTM (with the checkpoint's calibration, as served): fp32 and bf16 autocast, batch 1 and
larger batches (time per nowcast). The skill check runs every window of the event in fp32
and bf16 and compares them: max grey difference of the raw network output and of the
calibrated forecast, cells whose 0.5 mm/h event flips, and the pooled CSI at 0.5 mm/h.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from frames import bench_event
from timing import timed_s


def median_s(fn: Callable[[], object], repeat: int) -> float:
    return statistics.median(timed_s(fn, repeat))


def precision_check(event: Any, options: dict[str, Any]) -> dict[str, Any]:
    """fp32 against bf16 forecasts over every window of ``event`` (see the module docstring)."""
    from ingest.normalize import NormParams
    from model.evaluation.evaluate import forecast_windows
    from model.methods import get_method
    from model.verification.calibration import apply_calibration
    from model.verification.scores import grey_to_mmh, pooled_scores

    starts = event.window_starts(5, 15)
    truth = np.stack([event.grey[s + 5 : s + 20] for s in starts])
    calibration = get_method("convlstm", **options).calibration
    raw, calibrated = {}, {}
    for precision in ("fp32", "bf16"):
        method = get_method("convlstm", bf16=precision == "bf16", calibrated=False, **options)
        raw[precision] = forecast_windows(method, event, starts, 5, 15)
        forecast = raw[precision]
        calibrated[precision] = (
            forecast if calibration is None else apply_calibration(forecast, calibration)
        )
    norm = NormParams()
    rain_mmh = {precision: grey_to_mmh(f, norm) for precision, f in calibrated.items()}
    csi = {}
    for precision, forecast_mmh in rain_mmh.items():
        scores = pooled_scores([forecast_mmh], [grey_to_mmh(truth, norm)], 15)
        values = [v for v in scores["csi"]["0.5"] if v is not None]
        csi[precision] = float(np.mean(values)) if values else None
    flips = (rain_mmh["fp32"] >= 0.5) != (rain_mmh["bf16"] >= 0.5)
    return {
        "windows": len(starts),
        "calibration_applied": calibration is not None,
        "max_abs_grey_diff_raw": float(np.abs(raw["fp32"] - raw["bf16"]).max()),
        "max_abs_grey_diff_calibrated": float(
            np.abs(calibrated["fp32"] - calibrated["bf16"]).max()
        ),
        "event_0_5_flipped_cells": int(flips.sum()),
        "cells": int(flips.size),
        "mean_csi_0_5": csi,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--batches", default="1,2,4,8,16")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from model.hardware import describe_machine
    from model.methods import get_method

    event = bench_event()
    frames = event.grey[:5][None]
    options = {"checkpoint": args.checkpoint} if args.checkpoint else {}
    extrapolation = get_method("extrapolation")
    results: dict[str, object] = {
        "machine": describe_machine(),
        "torch_threads": torch.get_num_threads(),
        "frames": event.name,
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
    results["bf16_vs_fp32"] = precision_check(event, options)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
