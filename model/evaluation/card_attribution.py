"""The model card's account of where the served network's gain over extrapolation comes from:
the inflow at the grid's edge alone, a light blur with it, and the network, scored the same way
on each split by `model.experiments.smoothing_baselines` (its ``--json`` output)."""

from __future__ import annotations

from typing import Any

SPLITS = ("train", "validation", "test")


def attribution_section(results: dict[str, dict[str, Any]] | None) -> str:
    """A table of CSI(0.5) / CSI(2) / CSI(5) / rain MSE per candidate and split, from a
    `smoothing_baselines` result (candidate -> split -> scores); a note when there is none."""
    if not results:
        return (
            "Not measured: run `python -m model.experiments.smoothing_baselines` and pass its "
            "JSON with `--attribution`."
        )
    splits = [s for s in SPLITS if any(s in by_split for by_split in results.values())]
    header = "| candidate | " + " | ".join(splits) + " |"
    rows = [header, "| --- |" + " --- |" * len(splits)]
    for name, by_split in results.items():
        cells = []
        for split in splits:
            r = by_split.get(split)
            scores = (r["csi_0_5"], r["csi_2"], r["csi_5"]) if r else ()
            cells.append(
                "-"
                if r is None
                else " / ".join(f"{v:.3f}" for v in scores) + f" / {r['rain_mse']:.2f}"
            )
        label = f"`{name}`" if name.endswith(".safetensors") else name
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    intro = (
        "Mean over the 15 leads of CSI(0.5) / CSI(2) / CSI(5) / rain MSE, every candidate "
        "moved along the same motion field and scored on the same windows (training blocks: "
        "centre crops, every window; the network was trained there, so its column there is "
        "not out of sample):"
    )
    return intro + "\n\n" + "\n".join(rows)
