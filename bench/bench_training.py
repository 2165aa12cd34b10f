"""Cost of one training sample of a network, on whole frames against random crops.

    python bench/bench_training.py [--arch eulerian-convlstm] [--crops 60,48] [--repeat 3]
        [--json OUT]

One optimiser step (`model.training.train.train_step`: forward, cross-entropy, backward, RMSProp)
of a batch of 4 windows (5 + 15 frames, 100 x 100) of real BOM frames when ../shared/data/radar is
present (else synthetic), bf16 autocast as the radar runs train; the median of ``--repeat``
steps after two warm-up steps, per sample. Each crop size is timed in the same run as whole
frames, so the ratios compare like with like.

``--arch convlstm`` (the Lagrangian ConvLSTM, whole frames, batch 8) is timed beside the
paper's Eulerian configuration instead, with the samples each sees in a 150-minute sitting
(`bench_lagrangian.training_costs`).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
from frames import bench_event
from timing import timed_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="eulerian-convlstm")
    parser.add_argument("--crops", default="60,48")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from model.hardware import describe_machine
    from model.nets.architectures import build_model, default_config, get_architecture
    from model.training.batches import random_crop
    from model.training.train import TrainConfig, make_optimiser, train_step

    event = bench_event()
    if get_architecture(args.arch).lagrangian:
        from bench_lagrangian import training_costs

        lagrangian = {"machine": describe_machine(), **training_costs(event, args.repeat)}
        print(json.dumps(lagrangian, indent=2))
        if args.json:
            args.json.write_text(json.dumps(lagrangian, indent=2))
        return
    batch = 4
    windows = np.stack([event.grey[i : i + 20] for i in range(batch)])
    inputs, targets = torch.from_numpy(windows[:, :5]), torch.from_numpy(windows[:, 5:])
    config = default_config(args.arch)
    model = build_model(config)
    optimiser = make_optimiser(model, TrainConfig())
    device = torch.device("cpu")
    rng = np.random.default_rng(0)

    def per_sample_s(crop: int | None) -> float:
        x, y, origin = inputs, targets, None
        if crop is not None:
            x, y, origin = random_crop(inputs, targets, crop, config.patch_size, rng)

        def step() -> None:
            train_step(model, optimiser, x, y, device, bf16=True, origin=origin)

        return statistics.median(timed_s(step, args.repeat)) / batch

    whole = per_sample_s(None)
    crops = {int(c): per_sample_s(int(c)) for c in args.crops.split(",")}
    results = {
        "machine": describe_machine(),
        "torch_threads": torch.get_num_threads(),
        "frames": event.name,
        "architecture": args.arch,
        "batch": batch,
        "whole_frame_s_per_sample": round(whole, 3),
        "crop_s_per_sample": {c: round(s, 3) for c, s in crops.items()},
        "speed_up_over_whole_frames": {c: round(whole / s, 2) for c, s in crops.items()},
        "area_ratio": {c: round((config.frame_cells / c) ** 2, 2) for c in crops},
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
