"""Figures of offline verification: scores versus lead time, and a forecast strip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_scores(reports: list[dict[str, Any]], out_png: Path, threshold: str = "0.5") -> None:
    """CSI, POD and FAR at ``threshold`` mm/h versus lead time, one line per method."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharex=True)
    for name, ax in zip(("csi", "pod", "far"), axes, strict=True):
        for rep in reports:
            values = [np.nan if v is None else v for v in rep[name][threshold]]
            ax.plot(rep["lead_minutes"], values, marker="o", ms=3, label=rep["method"])
        ax.set_title(f"{name.upper()} at >= {threshold} mm/h")
        ax.set_xlabel("lead time (min)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(", ".join(f"{r['method']}: {r['forecasts']} forecasts" for r in reports))
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def plot_strip(
    inputs_mmh: np.ndarray,
    truth_mmh: np.ndarray,
    forecasts_mmh: dict[str, np.ndarray],
    lead_minutes: list[float],
    title: str,
    out_png: Path,
    leads_shown: tuple[int, ...] = (0, 2, 4, 9, 14),
) -> None:
    """Rows: inputs, then truth and each method at chosen leads; rain rate on a log colour scale.

    inputs_mmh (T_in, H, W); truth_mmh and each forecast (T_out, H, W), mm/h.
    """
    from matplotlib.colors import LogNorm

    plt = _pyplot()
    leads = [k for k in leads_shown if k < truth_mmh.shape[0]]
    rows = 2 + len(forecasts_mmh)
    cols = max(len(leads), inputs_mmh.shape[0])
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    norm = LogNorm(vmin=0.1, vmax=100)
    image = None

    def show(ax: Any, field: np.ndarray, label: str) -> Any:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(label, fontsize=8)
        return ax.imshow(np.where(field >= 0.1, field, np.nan), norm=norm, cmap="turbo")

    for ax in axes.ravel():
        ax.axis("off")
    for j in range(inputs_mmh.shape[0]):
        axes[0, j].axis("on")
        image = show(axes[0, j], inputs_mmh[j], f"input t-{inputs_mmh.shape[0] - 1 - j}")
    named = {"observed": truth_mmh, **forecasts_mmh}
    for i, (name, frames) in enumerate(named.items(), start=1):
        for j, k in enumerate(leads):
            axes[i, j].axis("on")
            image = show(axes[i, j], frames[k], f"{name} +{lead_minutes[k]:g} min")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="rain rate (mm/h)")
    fig.suptitle(title)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
