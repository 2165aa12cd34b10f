"""STEPS ensemble cost per site, by member count and options, beside extrapolation and S-PROG
in the same run.

    python bench/bench_steps.py [--repeat 3] [--json OUT.json]

One site's nowcast as the inference worker makes it (`service.methods_runner.MethodRunner`'s
ensemble path: the motion field, the members, their mean as rain rates and the probabilities
of exceedance at the five thresholds), at 100 x 100 cells and 15 leads, for 10, 20 and 40
members with pysteps' non-parametric noise, and 20 members with its local (short-space
Fourier) noise; each against extrapolation (motion field + semi-Lagrangian) and S-PROG at
batch 1 in the same run, and as the share of a 6-minute cadence one core spends on it.

Inputs: a rainy window of the BOM Melbourne event (../shared/data/radar) or synthetic frames.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path

import numpy as np
from frames import bench_event
from timing import timed_s

CADENCE_S = 360.0
ARMS = (
    ("20 members, local (ssft) noise", {"n_members": 20, "noise": "ssft"}),
    ("10 members", {"n_members": 10}),
    ("20 members (default)", {"n_members": 20}),
    ("40 members", {"n_members": 40}),
)


def rainy_window(grey: np.ndarray) -> np.ndarray:
    """(1, 5, H, W) inputs ending at the frame with the largest wet fraction."""
    wet = [(frame > 0.35).mean() for frame in grey[4:]]
    end = int(np.argmax(wet)) + 4
    return grey[None, end - 4 : end + 1].astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from model.methods import get_method
    from model.methods.steps import StepsMethod
    from service.methods_runner import MethodRunner
    from service.settings import InferenceSettings

    event = bench_event()
    inputs = rainy_window(event.grey)
    settings = InferenceSettings(methods=("extrapolation",), data_dir=Path("/tmp/bench-steps"))
    runner = MethodRunner(settings)

    def median_s(fn: object) -> float:
        return statistics.median(timed_s(fn, args.repeat, warmup=1))  # type: ignore[arg-type]

    extrapolation = get_method("extrapolation")
    sprog = get_method("sprog")
    base = {
        "extrapolation": median_s(lambda: extrapolation(inputs, 15)),
        "sprog": median_s(lambda: sprog(inputs, 15)),
    }
    rows = []
    for label, options in ARMS:
        method = StepsMethod(**options)  # type: ignore[arg-type]
        seconds = median_s(lambda m=method: runner.run_ensemble("steps", m, inputs, 15))
        rows.append(
            {
                "arm": label,
                "seconds_per_site": round(seconds, 3),
                "x_extrapolation": round(seconds / base["extrapolation"], 1),
                "x_sprog": round(seconds / base["sprog"], 1),
                "share_of_6_min_cadence": round(seconds / CADENCE_S, 5),
                "sites_per_core_per_cadence": int(CADENCE_S // seconds),
            }
        )
    result = {
        "command": f"python bench/bench_steps.py --repeat {args.repeat}",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "input": f"{event.name}: one window, {inputs.shape[-2]} x {inputs.shape[-1]} cells",
        "baselines_seconds": {k: round(v, 4) for k, v in base.items()},
        "steps": rows,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
