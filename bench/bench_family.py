"""Cost of the family's networks per nowcast (5 -> 15 frames, 100 x 100), against extrapolation.

    python bench/bench_family.py [--repeat 5] [--batches 1,4] [--json OUT.json]

eulerian-convlstm, saconvlstm and fclstm (their shipped checkpoints, as served) and pysteps
extrapolation run in the same process on the same input frames (real BOM frames when
../shared/data/radar is present, else synthetic), fp32 and bf16 autocast; the median of
``--repeat`` calls after two warm-up calls, per nowcast. The SA-ConvLSTM's attention cost is its
time over the ConvLSTM's: the same cells plus the self-attention memory over the 50 x 50
grid (2,500 positions attending to 2,500, per layer and step).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
from pathlib import Path

import numpy as np
from frames import bench_event
from timing import timed_s

NETWORKS = ("eulerian-convlstm", "saconvlstm", "fclstm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from model.hardware import describe_machine
    from model.methods import get_method

    event = bench_event()
    frames = event.grey[:5][None]
    extrapolation = get_method("extrapolation")
    t_extrap = statistics.median(timed_s(lambda: extrapolation(frames, 15), args.repeat))
    per_nowcast_ms: dict[str, dict[str, dict[int, float]]] = {}
    for name in NETWORKS:
        per_nowcast_ms[name] = {}
        for precision in ("fp32", "bf16"):
            method = get_method(name, bf16=precision == "bf16")
            by_batch = {}
            for batch in (int(b) for b in args.batches.split(",")):
                run = functools.partial(method, np.repeat(frames, batch, axis=0), 15)
                by_batch[batch] = round(
                    1000 * statistics.median(timed_s(run, args.repeat)) / batch, 1
                )
            per_nowcast_ms[name][precision] = by_batch
    results = {
        "machine": describe_machine(),
        "torch_threads": torch.get_num_threads(),
        "frames": event.name,
        "extrapolation_ms": round(1000 * t_extrap, 1),
        "per_nowcast_ms": per_nowcast_ms,
        "over_extrapolation_batch1_fp32": {
            name: round(per_nowcast_ms[name]["fp32"][1] / (1000 * t_extrap), 2) for name in NETWORKS
        },
        "saconvlstm_over_eulerian_convlstm": {
            precision: {
                batch: round(ms / per_nowcast_ms["eulerian-convlstm"][precision][batch], 2)
                for batch, ms in per_nowcast_ms["saconvlstm"][precision].items()
            }
            for precision in ("fp32", "bf16")
        },
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
