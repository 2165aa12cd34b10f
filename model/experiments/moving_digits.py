"""The method's sanity experiment on moving digits: which encoder-forecasters learn motion.

Shi et al. (2015) first compare models on Moving-MNIST (10 frames in, 10 out, cross-entropy)
and find: a deeper ConvLSTM does better, a 1 x 1 state-to-state kernel much worse than a
larger one, and every ConvLSTM far better than the FC-LSTM. `run_experiment` trains small
variants of our networks (`VARIANTS`, built by `model.nets.architectures.build_model`, trained
by `model.training.train.train_step`, RMSProp as for radar) for the same number of samples each on
sequences from `model.experiments.digits_data`, and scores them on fixed test sequences made
of digits never seen in training.

Scores per variant: test cross-entropy per sequence (the sum over the 10 forecast frames of
64 x 64 pixels, as the paper reports it; lower is better), and the ghost fraction at the
last lead (`digits_data.ghost_fraction`; persistence as the reference).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.experiments import digits_data
from model.nets.architectures import build_model, default_config
from model.nets.checkpoint import load_checkpoint, save_checkpoint
from model.nets.config import NetworkConfig
from model.nets.network import count_parameters
from model.training.train import (
    TrainConfig,
    make_optimiser,
    resolve_device,
    seed_everything,
    train_step,
)

log = logging.getLogger(__name__)

IN_FRAMES = OUT_FRAMES = 10


def _digits_config(architecture: str, **values: Any) -> NetworkConfig:
    return default_config(
        architecture,
        in_frames=IN_FRAMES,
        out_frames=OUT_FRAMES,
        frame_cells=digits_data.FRAME_CELLS,
        **values,
    )


# name -> network. ConvLSTMs on 4 x 4 patches (a 16 x 16 grid of 16 channels, as the
# paper), 32 states per layer and 3 x 3 kernels to fit a CPU budget (the paper: 64-256
# states, 5 x 5); a digit moves 0.5 to 1 grid cell per frame.
VARIANTS: dict[str, NetworkConfig] = {
    "convlstm-1x32-k3": _digits_config("eulerian-convlstm", patch_size=4, hidden_channels=(32,)),
    "convlstm-2x32-k3": _digits_config("eulerian-convlstm", patch_size=4, hidden_channels=(32, 32)),
    "convlstm-2x32-k3-state1x1": _digits_config(
        "eulerian-convlstm", patch_size=4, hidden_channels=(32, 32), state_kernel_size=1
    ),
    # the whole 64 x 64 frame flattened (no pooling), 2 layers of 512 units
    "fclstm-2x512": _digits_config("fclstm", patch_size=1, hidden_channels=(512, 512)),
}


@dataclass(frozen=True)
class VariantResult:
    name: str
    parameters: int
    train_samples: int
    train_seconds: float
    final_train_loss: float
    test_cross_entropy: float  # per sequence: sum over 10 frames x 64 x 64 pixels
    ghost_fraction_last_lead: float
    precision: str = "fp32"  # or "bf16 autocast"


def _split(batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    tensor = torch.from_numpy(batch)
    return tensor[:, :IN_FRAMES], tensor[:, IN_FRAMES:]


def test_scores(
    model: torch.nn.Module, test: np.ndarray, batch_size: int = 32, bf16: bool = False
) -> tuple[float, float, np.ndarray]:
    """(cross-entropy per sequence, ghost fraction at the last lead, forecasts (N, 10, 64, 64)).

    ``bf16``: the forward pass under bfloat16 autocast, as the variant was trained.
    """
    model.eval()
    device = next(model.parameters()).device
    total, forecasts = 0.0, []
    with torch.no_grad():
        for i in range(0, len(test), batch_size):
            x, y = _split(test[i : i + batch_size])
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(x.to(device))
            logits = logits.float().cpu()
            total += float(
                torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum")
            )
            forecasts.append(torch.sigmoid(logits).numpy())
    forecast = np.concatenate(forecasts)
    ghost = digits_data.ghost_fraction(test[:, IN_FRAMES - 1], test[:, -1], forecast[:, -1])
    return total / len(test), ghost, forecast


def persistence_scores(test: np.ndarray) -> tuple[float, float]:
    """The same two scores for repeating the last input frame (clipped away from 0 and 1)."""
    last = np.clip(test[:, IN_FRAMES - 1 : IN_FRAMES], 1e-3, 1 - 1e-3)
    target = test[:, IN_FRAMES:]
    ce = -(target * np.log(last) + (1 - target) * np.log(1 - last)).sum() / len(test)
    ghost = digits_data.ghost_fraction(test[:, IN_FRAMES - 1], test[:, -1], test[:, IN_FRAMES - 1])
    return float(ce), ghost


def train_variant(
    name: str,
    config: NetworkConfig,
    train_images: np.ndarray,
    test: np.ndarray,
    samples: int,
    batch_size: int,
    seed: int,
    bf16: bool = False,
    weights_to: Path | None = None,
) -> tuple[VariantResult, np.ndarray]:
    """Train ``config`` on ``samples`` fresh training sequences; score it on ``test``.

    ``bf16``: bfloat16 autocast in training and scoring (fp32 weights), as `nowcast train --bf16`.
    ``weights_to``: also write the trained network there as a checkpoint (`load_checkpoint`).
    """
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    model = build_model(config)
    optimiser = make_optimiser(model, TrainConfig())
    device = resolve_device("auto")  # CUDA when present
    model = model.to(device)
    started, seen, recent = time.monotonic(), 0, []
    model.train()
    while seen < samples:
        x, y = _split(digits_data.sequences(rng, train_images, batch_size))
        recent.append(train_step(model, optimiser, x, y, device, bf16=bf16))
        seen += batch_size
        if len(recent) % 50 == 0:
            log.info("%s: %d samples, loss %.4f", name, seen, float(np.mean(recent[-50:])))
    seconds = time.monotonic() - started
    ce, ghost, forecast = test_scores(model, test, bf16=bf16)
    result = VariantResult(
        name,
        count_parameters(model),
        seen,
        round(seconds, 1),
        float(np.mean(recent[-50:])),
        round(ce, 1),
        round(ghost, 3),
        "bf16 autocast" if bf16 else "fp32",
    )
    log.info("%s: %s", name, result)
    if weights_to is not None:
        meta = {"experiment": "moving-digits", **asdict(result)}
        save_checkpoint(weights_to, model, config, meta)
    return result, forecast


def rescore_variant(
    name: str, checkpoint: Path, test: np.ndarray
) -> tuple[VariantResult, np.ndarray]:
    """Score a variant saved by `train_variant` (``weights_to``) on ``test`` again, without
    training: its training figures come from the checkpoint, its scores are recomputed."""
    model, config, meta = load_checkpoint(checkpoint)
    if config != VARIANTS[name]:
        raise ValueError(f"{checkpoint} does not hold the variant {name}")
    bf16 = meta.get("precision") == "bf16 autocast"
    ce, ghost, forecast = test_scores(model, test, bf16=bf16)
    result = VariantResult(
        name,
        count_parameters(model),
        int(meta["train_samples"]),
        float(meta["train_seconds"]),
        float(meta["final_train_loss"]),
        round(ce, 1),
        round(ghost, 3),
        str(meta.get("precision", "fp32")),
    )
    return result, forecast


def run_experiment(
    samples: int = 4000,
    batch_size: int = 16,
    test_sequences: int = 256,
    seed: int = 0,
    variants: tuple[str, ...] = tuple(VARIANTS),
    bf16: bool = False,
    weights_dir: Path | None = None,
    from_weights: bool = False,
) -> tuple[list[VariantResult], dict[str, Any], np.ndarray, dict[str, np.ndarray]]:
    """Train and score ``variants``; returns (results, persistence scores, test set, forecasts).

    ``weights_dir``: write each trained variant to ``weights_dir / f"{name}.safetensors"``;
    with ``from_weights``, read them from there instead of training (`rescore_variant`), so
    variants trained in separate runs share one table and one picture.
    """
    if from_weights and weights_dir is None:
        raise ValueError("scoring saved variants needs the folder they were saved in")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; valid: {', '.join(VARIANTS)}")
    train_images, test_images = digits_data.split_images(digits_data.digit_images())
    test = digits_data.sequences(
        np.random.default_rng(seed + 10_000), test_images, test_sequences, IN_FRAMES + OUT_FRAMES
    )
    results, forecasts = [], {}
    for name in variants:
        if from_weights:
            assert weights_dir is not None
            saved = weights_dir / f"{name}.safetensors"
            if not saved.is_file():
                raise ValueError(f"no saved variant {name} in {weights_dir}")
            result, forecast = rescore_variant(name, saved, test)
            results.append(result)
            forecasts[name] = forecast
            continue
        result, forecast = train_variant(
            name,
            VARIANTS[name],
            train_images,
            test,
            samples,
            batch_size,
            seed,
            bf16,
            None if weights_dir is None else weights_dir / f"{name}.safetensors",
        )
        results.append(result)
        forecasts[name] = forecast
    ce, ghost = persistence_scores(test)
    reference = {
        "name": "persistence",
        "test_cross_entropy": round(ce, 1),
        "ghost": round(ghost, 3),
    }
    return results, reference, test, forecasts


def table(results: list[VariantResult], reference: dict[str, Any]) -> str:
    """Markdown table, best cross-entropy first, with persistence as the last row."""
    lines = [
        "| variant | parameters | training samples | training (s) | test cross-entropy "
        "per sequence | ghost fraction, lead 10 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in sorted(results, key=lambda r: r.test_cross_entropy):
        lines.append(
            f"| {r.name} | {r.parameters:,} | {r.train_samples:,} | {r.train_seconds:.0f} | "
            f"{r.test_cross_entropy:.1f} | {r.ghost_fraction_last_lead:.3f} |"
        )
    lines.append(
        f"| persistence (reference) | 0 | 0 | 0 | {reference['test_cross_entropy']:.1f} | "
        f"{reference['ghost']:.3f} |"
    )
    return "\n".join(lines)


def showcase_indices(test: np.ndarray, count: int = 3) -> list[int]:
    """Test sequences for the picture: the one whose digits cover most pixels at the last
    input frame, then, among those covering at least the median, the ``count - 1`` whose
    digits have left most of their last-input pixels by the last lead (travelling: where a
    ghost trail would show).
    """
    last, end = test[:, IN_FRAMES - 1] > 0.3, test[:, -1] > 0.3
    covered = last.sum(axis=(1, 2))
    fullest = int(np.argmax(covered))
    left = (last & ~end).sum(axis=(1, 2)) / np.maximum(covered, 1)
    left[covered < np.median(covered)] = -1.0
    travelling = [int(i) for i in np.argsort(-left, kind="stable") if i != fullest]
    return [fullest, *travelling[: count - 1]]


def plot_predictions(
    test: np.ndarray,
    forecasts: dict[str, np.ndarray],
    out_png: Path,
    indices: list[int] | None = None,
) -> None:
    """Per test sequence: the last 3 inputs and the 10 true frames, then each variant's 10.

    ``indices`` None: `showcase_indices`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    indices = showcase_indices(test) if indices is None else indices
    rows: list[tuple[str, np.ndarray, int, bool]] = []  # label, 10 frames, sequence, truth?
    for index in indices:
        rows.append((f"sequence {index}: truth", test[index, IN_FRAMES:], index, True))
        rows += [(name, f[index], index, False) for name, f in forecasts.items()]
    columns = OUT_FRAMES + 3
    fig, axes = plt.subplots(
        len(rows), columns, figsize=(2.0 + 1.1 * columns, 1.15 * len(rows)), squeeze=False
    )
    fig.subplots_adjust(left=0.11, right=0.99, top=0.97, bottom=0.01, wspace=0.05, hspace=0.25)
    for r, (label, frames, index, truth_row) in enumerate(rows):
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < 3:
                if truth_row:
                    ax.imshow(test[index, IN_FRAMES - 3 + c], cmap="gray", vmin=0, vmax=1)
                    ax.set_title(f"in t-{2 - c}", fontsize=7)
                else:
                    ax.axis("off")
                continue
            ax.imshow(frames[c - 3], cmap="gray", vmin=0, vmax=1)
            if truth_row:
                ax.set_title(f"+{c - 2}", fontsize=7)
        box = axes[r, 0].get_position()
        fig.text(0.005, (box.y0 + box.y1) / 2, label, fontsize=7, va="center")
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def write_outputs(
    results: list[VariantResult],
    reference: dict[str, Any],
    test: np.ndarray,
    forecasts: dict[str, np.ndarray],
    out_dir: Path,
    command: str,
) -> tuple[Path, Path, Path]:
    """``table.md``, ``results.json`` and ``predictions.png`` under ``out_dir``."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "predictions.png"
    plot_predictions(test, forecasts, png)
    markdown = out_dir / "table.md"
    markdown.write_text(f"Command: `{command}`\n\n{table(results, reference)}\n")
    data = out_dir / "results.json"
    data.write_text(
        json.dumps(
            {
                "command": command,
                "variants": {n: VARIANTS[n].to_dict() for n in forecasts},
                "results": [asdict(r) for r in results],
                "persistence": reference,
                "pictured_sequences": showcase_indices(test),
            },
            indent=2,
        )
    )
    return markdown, data, png
