"""What each CPU option buys one ConvLSTM nowcast (5 -> 15 frames, 100 x 100, batch 1),
against pysteps extrapolation and this CPU's own matrix-multiply ceiling, in one run.

    python bench/bench_cpu_options.py [--repeat 5] [--no-compile] [--json OUT.json]

Options timed, each in fp32 and bf16 autocast (the shipped checkpoint, raw network output):
eager (as served), ``channels_last`` weights and states, and ``torch.compile`` (inductor;
its compile time is reported apart). Every option's forecast is compared with eager fp32's
(max abs grey difference). The ceiling is the best rate of a large square matmul in each
precision on the same threads: the nowcast's FLOPs (torch's counter) over that rate is the
fastest this CPU could do the nowcast, whatever the implementation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from frames import bench_event
from timing import timed_s


def median_s(fn: Callable[[], object], repeat: int) -> float:
    return statistics.median(timed_s(fn, repeat))


def matmul_ceiling_gflops(dtype: Any, size: int = 2048, repeat: int = 5) -> float:
    """Best GFLOP/s of a ``size`` x ``size`` matmul in ``dtype`` (2 * size**3 FLOPs a call)."""
    import torch

    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    best = min(timed_s(lambda: torch.mm(a, b), repeat))
    return 2 * size**3 / best / 1e9


def nowcast_gflop(model: Any, inputs: Any) -> float:
    """FLOPs of one forward pass, by torch's counter (convolutions and matmuls)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(inputs)
    return counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from model.hardware import describe_machine
    from model.methods import get_method

    event = bench_event()
    frames = event.grey[:5][None]
    inputs = torch.from_numpy(frames)
    extrapolation = get_method("extrapolation")
    t_extrap = median_s(lambda: extrapolation(frames, 15), args.repeat)

    def fresh_model() -> Any:
        return get_method("eulerian-convlstm", calibrated=False).model.eval()

    def forecast(model: Any, x: Any, bf16: bool) -> Any:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return torch.sigmoid(model(x).float())

    gflop = nowcast_gflop(fresh_model(), inputs)
    reference = forecast(fresh_model(), inputs, bf16=False)
    results: dict[str, Any] = {
        "machine": describe_machine(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "frames": event.name,
        "nowcast_gflop": gflop,
        "extrapolation_s": t_extrap,
        "options": {},
    }
    options: dict[str, Callable[[], tuple[Any, Any]]] = {
        "eager": lambda: (fresh_model(), inputs),
        "channels_last": lambda: (
            fresh_model().to(memory_format=torch.channels_last),
            inputs.contiguous(memory_format=torch.channels_last),
        ),
    }
    if not args.no_compile:
        options["torch.compile"] = lambda: (torch.compile(fresh_model()), inputs)
    for name, build in options.items():
        for bf16 in (False, True):
            model, x = build()
            started = time.perf_counter()
            first = forecast(model, x, bf16)  # compiles, for torch.compile
            first_call_s = time.perf_counter() - started
            seconds = median_s(lambda m=model, x=x, b=bf16: forecast(m, x, b), args.repeat)
            results["options"][f"{name}, {'bf16' if bf16 else 'fp32'}"] = {
                "batch1_s": seconds,
                "over_extrapolation": seconds / t_extrap,
                "gflop_per_s": gflop / seconds,
                "first_call_s": first_call_s,
                "max_abs_grey_diff_vs_eager_fp32": float((first - reference).abs().max()),
            }
    for label, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        ceiling = matmul_ceiling_gflops(dtype)
        results[f"matmul_ceiling_{label}_gflop_per_s"] = ceiling
        results[f"nowcast_at_ceiling_{label}_s"] = gflop / ceiling
    results["target_batch1_s"] = 2 * t_extrap
    results["gflop_per_s_needed_for_target"] = gflop / (2 * t_extrap)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
