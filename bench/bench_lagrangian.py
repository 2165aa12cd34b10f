"""The Lagrangian ConvLSTM's costs, each beside its baseline in the same run.

    python bench/bench_lagrangian.py [--repeat 5] [--json OUT.json]

1. Training: one optimiser step of the shipped Lagrangian configuration (batch 8, the default
   loss, fp32, whole 100 x 100 frames, inputs and targets already in Lagrangian
   coordinates as the cache holds them) against one step of the paper's Eulerian
   configuration (`model.training.train.train_step`, batch 4, fp32 and bf16 autocast), per sample,
   and the windows each sees in a 150-minute sitting.
2. Serving: one nowcast as served, all in (motion field, inputs moved, network, each lead
   moved), at batch 1 and per nowcast at batches 2, 4 and 8, against pysteps extrapolation
   (motion field + semi-Lagrangian) and S-PROG at batch 1, with the Lagrangian nowcast's parts.

Inputs: windows of the BOM Melbourne event (../shared/data/radar) or synthetic frames.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np
from frames import bench_event
from timing import timed_s


def median_s(fn: Callable[[], object], repeat: int) -> float:
    return statistics.median(timed_s(fn, repeat))


def training_costs(event: object, repeat: int) -> dict[str, object]:
    import torch

    from model.nets.architectures import build_model, default_config
    from model.training.lagrangian_data import transform_window
    from model.training.lagrangian_losses import build_loss
    from model.training.lagrangian_train import LagrangianTrainConfig, make_optimizer
    from model.training.train import TrainConfig, make_optimiser, train_step

    grey = event.grey  # type: ignore[attr-defined]
    starts = range(0, min(8, grey.shape[0] - 20) + 1)
    moved = [transform_window(grey[s : s + 5], grey[s + 5 : s + 20]) for s in starts]
    while len(moved) < 8:
        moved = moved + moved
    x = torch.from_numpy(np.stack([m[0] for m in moved[:8]]))
    y = torch.from_numpy(np.stack([m[1] for m in moved[:8]]))
    inside = torch.from_numpy(np.stack([m[2] for m in moved[:8]]))
    config = default_config("convlstm")
    model = build_model(config)
    optimiser = make_optimizer(model, LagrangianTrainConfig())
    default = LagrangianTrainConfig()
    loss_fn = build_loss(default.loss, default.soft_csi_mmh, default.rain_mse_weight)

    def lagrangian_step() -> None:
        optimiser.zero_grad(set_to_none=True)
        loss_fn(model(x), y, inside).backward()
        optimiser.step()

    lagrangian_s = median_s(lagrangian_step, repeat) / 8
    paper = build_model(default_config("eulerian-convlstm"))
    paper_optimiser = make_optimiser(paper, TrainConfig())
    windows = np.stack([grey[s : s + 20] for s in range(4)])
    ex, ey = torch.from_numpy(windows[:, :5]), torch.from_numpy(windows[:, 5:])
    cpu = torch.device("cpu")
    paper_s = {
        precision: median_s(
            lambda bf16=precision == "bf16": train_step(paper, paper_optimiser, ex, ey, cpu, bf16),
            repeat,
        )
        / 4
        for precision in ("fp32", "bf16")
    }
    sitting_s = 150 * 60
    return {
        "lagrangian": {
            "config": config.to_dict(),
            "batch": 8,
            "s_per_sample": round(lagrangian_s, 4),
            "samples_per_s": round(1 / lagrangian_s, 1),
            "samples_in_150_min": int(sitting_s / lagrangian_s),
        },
        "paper_eulerian": {
            "batch": 4,
            **{f"{p}_s_per_sample": round(s, 4) for p, s in paper_s.items()},
            **{f"{p}_samples_in_150_min": int(sitting_s / s) for p, s in paper_s.items()},
        },
        "lagrangian_speed_up_over_paper_fp32": round(paper_s["fp32"] / lagrangian_s, 1),
    }


def serving_costs(event: object, repeat: int) -> dict[str, object]:
    from model.advection.lagrangian import lagrangian_inputs, to_eulerian
    from model.advection.motion import lead_displacements, motion_field
    from model.methods import get_method

    grey = event.grey  # type: ignore[attr-defined]
    windows = np.stack([grey[s : s + 5] for s in range(0, 8 * 3, 3)]).astype(np.float32)
    convlstm = get_method("convlstm", device="cpu")
    extrapolation = get_method("extrapolation")
    sprog = get_method("sprog")
    one = windows[:1]
    per_nowcast_ms = {
        "extrapolation_batch_1": median_s(lambda: extrapolation(one, 15), repeat) * 1e3,
        "sprog_batch_1": median_s(lambda: sprog(one, 15), repeat) * 1e3,
    }
    for batch in (1, 2, 4, 8):
        per_nowcast_ms[f"convlstm_batch_{batch}"] = (
            median_s(lambda b=batch: convlstm(windows[:b], 15), repeat) * 1e3 / batch
        )
    frames = one[0]
    velocity = motion_field(frames)
    displacements = lead_displacements(velocity, 15)
    moved = lagrangian_inputs(frames, velocity, displacements)[None]
    fields = convlstm.run_network(moved)[0]
    parts_ms = {
        "motion_field": median_s(lambda: motion_field(frames), repeat) * 1e3,
        "displacements_15_leads": median_s(lambda: lead_displacements(velocity, 15), repeat) * 1e3,
        "inputs_moved": median_s(lambda: lagrangian_inputs(frames, velocity, displacements), repeat)
        * 1e3,
        "network_batch_1": median_s(lambda: convlstm.run_network(moved), repeat) * 1e3,
        "leads_moved": median_s(lambda: to_eulerian(fields, velocity, displacements), repeat) * 1e3,
    }
    extrapolation_ms = per_nowcast_ms["extrapolation_batch_1"]
    best = min(per_nowcast_ms[f"convlstm_batch_{b}"] for b in (1, 2, 4, 8))
    return {
        "per_nowcast_ms": {k: round(v, 1) for k, v in per_nowcast_ms.items()},
        "convlstm_parts_ms": {k: round(v, 1) for k, v in parts_ms.items()},
        "convlstm_batch_1_over_extrapolation": round(
            per_nowcast_ms["convlstm_batch_1"] / extrapolation_ms, 2
        ),
        "convlstm_best_batch_over_extrapolation": round(best / extrapolation_ms, 2),
        "calibration_applied": convlstm.meta.get("calibration_applied"),
        "residual_gate_applied": convlstm.meta.get("residual_gate_applied"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from model.hardware import describe_machine

    event = bench_event()
    results = {
        "machine": describe_machine(),
        "torch_threads": torch.get_num_threads(),
        "frames": event.name,
        "training": training_costs(event, args.repeat),
        "serving": serving_costs(event, args.repeat),
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
