"""The K-Means noise mask (METHOD.md step 4) fitted on each real site's archive, looked at.

For every site under the given folders: its frames normalised as the ingest does (no mask),
their monthly pixel means, the mask `ingest.noise_mask.fit_clutter_mask` learns from them, and
what it rests on. Writes a Markdown table and one PNG per site (the site's mean field with the
masked cells outlined) to ``--out``.

    python -m model.experiments.mask_report ../shared/data/radar --out docs/masks

Recorded in docs/masks/README.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def site_masks(folders: list[Path]) -> dict[str, dict[str, object]]:
    """Per site: frames, months, mask and mean grey field of its normalised frames."""
    from core.frame import FrameRejected
    from ingest.noise_mask import fit_clutter_mask, monthly_means
    from ingest.normalize import NormParams, normalise_dbz
    from ingest.reader import frame_files, read_radar_file

    frames: dict[str, list[tuple[object, np.ndarray]]] = {}
    for folder in folders:
        for path in frame_files(folder):
            try:
                field = read_radar_file(path)
            except FrameRejected:
                continue
            grey, _covered = normalise_dbz(field.dbz, NormParams(), None)
            frames.setdefault(field.site_id, []).append((field.valid_time, grey))
    out: dict[str, dict[str, object]] = {}
    for site, items in sorted(frames.items()):
        monthly = monthly_means(items)  # type: ignore[arg-type]
        mask = fit_clutter_mask(np.stack(list(monthly.values())))
        mean = np.mean([g for _, g in items], axis=0)
        out[site] = {"frames": len(items), "months": list(monthly), "mask": mask, "mean": mean}
    return out


def write_report(masks: dict[str, dict[str, object]], out: Path, command: str) -> Path:
    """The table (table.md) and a picture per site under ``out``; returns the table's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    rows = [
        "| site | frames | months | masked cells | median / max of the mean grey | picture |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for site, found in masks.items():
        mask, mean = np.asarray(found["mask"]), np.asarray(found["mean"])
        picture = out / f"{site}.png"
        fig, ax = plt.subplots(figsize=(3.2, 3.2), dpi=100)
        ax.imshow(mean, cmap="Blues", vmin=0, vmax=max(float(mean.max()), 0.1))
        if mask.any():
            ax.contour(mask, levels=[0.5], colors="red", linewidths=1)
        ax.set_title(f"{site}: mean grey, {int(mask.sum())} masked", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.savefig(picture, bbox_inches="tight")
        plt.close(fig)
        months = ", ".join(str(m) for m in found["months"])  # type: ignore[attr-defined]
        spread = f"{float(np.median(mean)):.3f} / {float(mean.max()):.3f}"
        link = f"[{picture.name}]({picture.name})"
        rows.append(
            f"| {site} | {found['frames']} | {months} | {int(mask.sum())} | {spread} | {link} |"
        )
    table = out / "table.md"
    table.write_text(f"```bash\n{command}\n```\n\n" + "\n".join(rows) + "\n")
    return table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/masks"))
    args = parser.parse_args(argv)
    command = "python -m model.experiments.mask_report " + " ".join(
        [*map(str, args.folders), "--out", str(args.out)]
    )
    print(write_report(site_masks(args.folders), args.out, command))


if __name__ == "__main__":
    main()
