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
            values = _floats(rep[name][threshold])
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


RELIABILITY_LEADS = (1, 5, 10, 15)


def reliability_band(probability: float, count: int) -> float:
    """Half-width of the 95 % sampling band of a perfectly reliable bin: 1.96 sqrt(p (1 - p)
    / n), the binomial spread of an observed frequency over ``count`` independent cases."""
    return 1.96 * float(np.sqrt(probability * (1.0 - probability) / max(count, 1)))


def _error_bars(
    scores: dict[str, Any],
    threshold: str,
    lead: int,
    p: np.ndarray,
    o: np.ndarray,
    n: np.ndarray,
) -> np.ndarray:
    """(2, bins) lower and upper error bars of the observed frequencies: the band the card
    judges by (the jackknife-t over events) where the report has one, in bins with cases from
    one event only the bootstrap over forecasts, and without either the binomial band of
    independent cells."""
    low = high = np.full(len(p), np.nan)
    for key in ("reliability_band_events_t", "reliability_band"):
        band = scores.get(key, {}).get(threshold)
        if band is not None:
            low = np.where(np.isnan(low), _floats(band[lead - 1]["low"]), low)
            high = np.where(np.isnan(high), _floats(band[lead - 1]["high"]), high)
    if not np.isnan(low).all():
        return np.nan_to_num(np.stack([o - low, high - o]).clip(min=0.0))
    half = [
        reliability_band(pi, ni) if np.isfinite(pi) else 0.0 for pi, ni in zip(p, n, strict=True)
    ]
    return np.stack([half, half])


def _floats(values: list[float | None]) -> np.ndarray:
    """A JSON list with None where undefined, as float64 with NaN there."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def plot_reliability(
    reports: list[dict[str, Any]], out_png: Path, thresholds: tuple[str, ...] = ("0.5", "2.0")
) -> None:
    """Reliability diagrams of the probabilistic reports: observed frequency against forecast
    probability per bin, one panel per (report, threshold), a line per lead of
    `RELIABILITY_LEADS`, the diagonal, each point's 95 % band (`_error_bars`), and the cases
    per bin on a log axis underneath."""
    plt = _pyplot()
    chosen = [r for r in reports if "probabilistic" in r]
    fig, axes = plt.subplots(
        2,
        len(chosen) * len(thresholds),
        figsize=(4.2 * len(chosen) * len(thresholds), 6),
        gridspec_kw={"height_ratios": (3, 1)},
        squeeze=False,
    )
    column = 0
    for rep in chosen:
        scores = rep["probabilistic"]
        for threshold in thresholds:
            ax, counts_ax = axes[0, column], axes[1, column]
            ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfect reliability")
            for lead in RELIABILITY_LEADS:
                points = scores["reliability"][threshold][lead - 1]
                p = _floats(points["forecast_probability"])
                o = _floats(points["observed_frequency"])
                n = np.asarray(points["count"])
                yerr = _error_bars(scores, threshold, lead, p, o, n)
                minutes = rep["lead_minutes"][lead - 1]
                line = ax.errorbar(
                    p, o, yerr=yerr, marker="o", ms=3, capsize=2, label=f"+{minutes:g} min"
                )
                counts_ax.plot(p, np.where(n > 0, n, np.nan), marker=".", color=line[0].get_color())
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_title(f"{rep['method']}: P(rain >= {threshold} mm/h)")
            ax.set_ylabel("observed frequency")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper left")
            counts_ax.set_yscale("log")
            counts_ax.set_xlim(0, 1)
            counts_ax.set_xlabel("forecast probability")
            counts_ax.set_ylabel("cases")
            column += 1
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
