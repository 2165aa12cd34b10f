"""Pictures of a forecast's rain rate (mm/h): a PNG strip of the leads and an animated GIF.

Colour scale as in `model.evaluation.plots`: "turbo" on a logarithmic 0.1..100 mm/h scale; below
0.1 mm/h (no rain, 0 included) is white, NaN (no observation) light grey. Matplotlib is used
through its object API only (``Figure`` + ``FigureCanvasAgg``, no pyplot state), so these
functions can run in web-server threads. Panels are laid out in whole pixels (`strip_size_px`);
the dots per inch are a power of two so that inches * dpi is exact and no pixel is lost.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import UTC
from functools import lru_cache

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, Colormap, Normalize
from matplotlib.figure import Figure
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from service.forecast import Forecast
from service.formats.graticule import graticule_step_deg

RAIN_MIN_MMH = 0.1  # the legend's range, log-spaced
RAIN_MAX_MMH = 100.0
GRATICULE_RGB = (70, 70, 70)
PANEL_PX = 120  # one square map panel, margins included
LABEL_PX = 18  # band under each panel for its lead
TITLE_PX = 32
LEFT_PX = 28  # row names
RIGHT_PX = 72  # colour bar and its labels
DPI = 128
GIF_SCALE = 3  # screen pixels per grid cell
GIF_FRAME_MS = 500
_GIF_TITLE_PX = 18
_GIF_LEGEND_PX = 30  # colour bar 10 px, labels under it
_GAP_PX = 4


@lru_cache(maxsize=1)
def rain_colour_scale() -> tuple[Colormap, Normalize]:
    """pysteps' radar colour scale for rain rate (``intensity``, mm/h, levels 0.08..160 mm/h)
    with white under it and light grey for NaN, and its boundary norm."""
    from pysteps.visualization.precipfields import get_colormap

    cmap, norm, _levels, _labels = get_colormap("intensity", units="mm/h", colorscale="pysteps")
    return cmap.with_extremes(under="white", over=cmap(cmap.N - 1), bad="lightgrey"), norm


def rain_levels_mmh() -> list[float]:
    """The scale's level boundaries in mm/h (pysteps), low to high."""
    norm = rain_colour_scale()[1]
    assert isinstance(norm, BoundaryNorm)
    return [float(b) for b in norm.boundaries]


def colour_steps() -> list[tuple[float, str]]:
    """The scale as (lower bound in mm/h, "#rrggbb") per level, low to high: a rate takes the
    colour of the highest bound at or below it; below the first it is dry."""
    levels = rain_levels_mmh()
    steps = []
    for low, high in zip(levels, [*levels[1:], levels[-1] * 2], strict=True):
        r, g, b = (int(v) for v in rain_rgb(np.array([[float(np.sqrt(low * high))]]))[0, 0])
        steps.append((low, f"#{r:02x}{g:02x}{b:02x}"))
    return steps


def graticule(forecast: Forecast) -> Graticule | None:
    """(lon, lat, step): the cell centres' longitude and latitude (H, W) and the line spacing
    in degrees (`service.formats.graticule.graticule_step_deg`), for a georeferenced forecast
    (else None)."""
    if forecast.georef is None:
        return None
    lon, lat = forecast.georef.lonlat()
    return lon, lat, graticule_step_deg(lon, lat)


def graticule_lines(forecast: Forecast) -> Lines | None:
    """Where the graticule's lines cross the grid (None without georeference): (east, south)
    masks (H, W), True where a line runs between a cell and its neighbour to the east
    (south)."""
    found = graticule(forecast)
    if found is None:
        return None
    lon, lat, step = found
    east = np.zeros(lon.shape, dtype=bool)
    south = np.zeros(lon.shape, dtype=bool)
    for values in (np.floor(lon / step), np.floor(lat / step)):
        east[:, :-1] |= values[:, :-1] != values[:, 1:]
        south[:-1, :] |= values[:-1, :] != values[1:, :]
    return east, south


Lines = tuple[NDArray[np.bool_], NDArray[np.bool_]]
Graticule = tuple[NDArray[np.float64], NDArray[np.float64], float]


def _with_graticule(rgb: NDArray[np.uint8], lines: Lines | None, scale: int) -> NDArray[np.uint8]:
    """``rgb`` (H * scale, W * scale, 3) with the graticule drawn one pixel wide: on the last
    pixel column (row) of a cell whose eastern (southern) neighbour lies past a line."""
    if lines is None:
        return rgb
    east, south = lines
    out = rgb.copy()
    along = np.arange(scale)
    rows, cols = np.nonzero(east)
    out[(rows[:, None] * scale + along).ravel(), np.repeat(cols * scale + scale - 1, scale)] = (
        GRATICULE_RGB
    )
    rows, cols = np.nonzero(south)
    out[np.repeat(rows * scale + scale - 1, scale), (cols[:, None] * scale + along).ravel()] = (
        GRATICULE_RGB
    )
    return out


def _below_scale_to_under(rain_mmh: NDArray[np.floating]) -> NDArray[np.float32]:
    """Copy with rates under RAIN_MIN_MMH (0 included, which LogNorm would mask as bad) set to
    half of it, so that they take the "under" colour; NaN stays NaN. Any shape, mm/h."""
    rain = np.asarray(rain_mmh, dtype=np.float32)
    return np.where(rain < RAIN_MIN_MMH, np.float32(RAIN_MIN_MMH / 2), rain)


def rain_rgb(rain_mmh: NDArray[np.floating]) -> NDArray[np.uint8]:
    """(H, W) rain rate in mm/h -> (H, W, 3) uint8 RGB colours of the scale."""
    cmap, norm = rain_colour_scale()
    rgba = cmap(norm(_below_scale_to_under(rain_mmh)), bytes=True)
    return np.ascontiguousarray(rgba[..., :3])


def strip_size_px(n_panels: int, n_rows: int) -> tuple[int, int]:
    """(width, height) in pixels of a strip of ``n_panels`` leads in ``n_rows`` rows."""
    return LEFT_PX + n_panels * PANEL_PX + RIGHT_PX, TITLE_PX + n_rows * (PANEL_PX + LABEL_PX)


def _check_leads(forecast: Forecast, leads: Sequence[int] | None) -> list[int]:
    shown = list(range(1, forecast.n_leads + 1)) if leads is None else [int(k) for k in leads]
    if not shown or any(not 1 <= k <= forecast.n_leads for k in shown):
        raise ValueError(f"leads must be a non-empty subset of 1..{forecast.n_leads}: {leads}")
    return shown


def _check_observed(forecast: Forecast, observed_mmh: Mapping[int, np.ndarray]) -> None:
    for lead, field in observed_mmh.items():
        if not 1 <= lead <= forecast.n_leads:
            raise ValueError(f"observed lead {lead} outside 1..{forecast.n_leads}")
        if np.shape(field) != forecast.grey.shape[1:]:
            raise ValueError(f"observed lead {lead} has shape {np.shape(field)}")


def _draw_panel(
    ax: Axes,
    rgb: NDArray[np.uint8] | None,
    label: str,
    lines: Graticule | None = None,
) -> None:
    """One map panel of (H, W, 3) colours (``None``: no observation yet) with the graticule if
    any (drawn as contours of longitude and latitude), its lead label underneath."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(label, fontsize=6, labelpad=1)
    if rgb is None:
        ax.text(0.5, 0.5, "not observed", ha="center", va="center", fontsize=5, color="grey")
        return
    ax.imshow(rgb, interpolation="nearest")
    if lines is not None:
        lon, lat, step = lines
        colour = np.asarray(GRATICULE_RGB) / 255
        for values in (lon, lat):
            first, last = np.ceil(values.min() / step), np.floor(values.max() / step)
            levels = np.arange(first, last + 1) * step
            if len(levels):
                ax.contour(
                    values, levels=levels, colors=[colour], linewidths=0.5, linestyles="solid"
                )


def _add_axes_px(fig: Figure, left: int, bottom: int, width: int, height: int) -> Axes:
    """Axes at a rectangle given in pixels from the figure's lower left corner."""
    fig_width, fig_height = fig.canvas.get_width_height()
    return fig.add_axes(
        (left / fig_width, bottom / fig_height, width / fig_width, height / fig_height)
    )


def _add_colour_bar(fig: Figure, height_px: int) -> None:
    """The rain colour bar in the right margin, ``height_px`` tall, decades labelled."""
    fig_width, _ = fig.canvas.get_width_height()
    cax = _add_axes_px(fig, fig_width - RIGHT_PX + 8, LABEL_PX + _GAP_PX, 10, height_px)
    cmap, norm = rain_colour_scale()
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    levels = rain_levels_mmh()[1::2]
    bar.set_ticks(levels, labels=[f"{rate:g}" for rate in levels])
    bar.ax.minorticks_off()
    bar.ax.tick_params(labelsize=6)
    bar.set_label("rain rate (mm/h)", fontsize=6)


def forecast_strip_png(
    forecast: Forecast,
    observed_mmh: Mapping[int, np.ndarray] | None = None,
    leads: Sequence[int] | None = None,
) -> bytes:
    """PNG of the forecast's rain rate, one panel per lead, lead minutes under each panel.

    ``observed_mmh``: observed rain rate (H, W) mm/h keyed by 1-based lead (as
    `Forecast.lead_of` gives); when given, a second row shows it under the forecast (a panel
    reads "not observed" for a lead without one). ``leads``: 1-based leads to show (default
    all). Size: `strip_size_px` (len(leads), 1 or 2 rows). ValueError on a lead out of range
    or an observed field of another shape than the forecast grid.
    """
    shown = _check_leads(forecast, leads)
    rows: dict[str, Mapping[int, np.ndarray]] = {
        "forecast": dict(enumerate(forecast.rain_mmh(), 1))
    }
    if observed_mmh is not None:
        _check_observed(forecast, observed_mmh)
        rows["observed"] = observed_mmh
    width, height = strip_size_px(len(shown), len(rows))
    lines = graticule(forecast)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    side = PANEL_PX - 2 * _GAP_PX
    for r, (name, fields) in enumerate(rows.items()):
        bottom = height - TITLE_PX - (r + 1) * (PANEL_PX + LABEL_PX) + LABEL_PX + _GAP_PX
        for j, lead in enumerate(shown):
            ax = _add_axes_px(fig, LEFT_PX + j * PANEL_PX + _GAP_PX, bottom, side, side)
            label = f"+{forecast.lead_minutes[lead - 1]:g} min"
            field = fields.get(lead)
            _draw_panel(ax, None if field is None else rain_rgb(field), label, lines)
            if j == 0:
                ax.set_ylabel(name, fontsize=7, labelpad=2)
    _add_colour_bar(fig, height - TITLE_PX - LABEL_PX - 2 * _GAP_PX)
    issued = forecast.issue_time.astimezone(UTC)
    title = f"{forecast.site_id} - {forecast.method} - issued {issued:%Y-%m-%d %H:%M} UTC"
    if lines is not None:
        title += " - grey lines: lon/lat graticule"
    fig.text(0.5, 1 - TITLE_PX / 2 / height, title, ha="center", va="center", fontsize=8)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


@lru_cache(maxsize=1)
def probability_colour_scale() -> tuple[Colormap, Normalize]:
    """Probability 0..1 in 10 steps of matplotlib's sequential "BuPu"; under 0: white."""
    from matplotlib import colormaps

    cmap = colormaps["BuPu"].resampled(10).with_extremes(under="white")
    return cmap, Normalize(vmin=0.0, vmax=1.0)


def probability_strip(
    forecast: Forecast, panels_rgb: Sequence[NDArray[np.uint8]], title: str
) -> Figure:
    """A one-row strip of ready-coloured probability panels (one per lead) with the
    probability colour bar and the graticule, laid out like `forecast_strip_png`."""
    width, height = strip_size_px(len(panels_rgb), 1)
    lines = graticule(forecast)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    side = PANEL_PX - 2 * _GAP_PX
    bottom = height - TITLE_PX - PANEL_PX + _GAP_PX
    for j, rgb in enumerate(panels_rgb):
        ax = _add_axes_px(fig, LEFT_PX + j * PANEL_PX + _GAP_PX, bottom, side, side)
        _draw_panel(ax, rgb, f"+{forecast.lead_minutes[j]:g} min", lines)
    fig_width, _ = fig.canvas.get_width_height()
    cax = _add_axes_px(fig, fig_width - RIGHT_PX + 8, LABEL_PX + _GAP_PX, 10, side)
    cmap, norm = probability_colour_scale()
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    bar.set_ticks([0, 0.5, 1], labels=["0", "50", "100"])
    bar.ax.tick_params(labelsize=6)
    bar.set_label("probability (%)", fontsize=6)
    fig.text(0.5, 1 - TITLE_PX / 2 / height, title, ha="center", va="center", fontsize=7)
    return fig


def _gif_legend(width_px: int, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> Image.Image:
    """A log colour bar 0.1..100 mm/h across ``width_px`` with its decades labelled."""
    legend = Image.new("RGB", (width_px, _GIF_LEGEND_PX), "white")
    rates = np.logspace(np.log10(RAIN_MIN_MMH), np.log10(RAIN_MAX_MMH), width_px)
    legend.paste(Image.fromarray(rain_rgb(np.tile(rates, (10, 1)))), (0, 0))
    draw = ImageDraw.Draw(legend)
    for decade, text in ((0, "0.1"), (1, "1"), (2, "10"), (3, "100 mm/h")):
        x = min(int(decade / 3 * (width_px - 1)), width_px - int(draw.textlength(text, font)) - 1)
        draw.text((max(x, 0), 13), text, fill="black", font=font)
    return legend


def forecast_animation_gif(forecast: Forecast, frame_ms: int = GIF_FRAME_MS) -> bytes:
    """Animated GIF of the rain rate, one frame per lead (``frame_ms`` each, looping).

    Each frame: a title line with site, method and lead (+minutes, valid time in UTC), the map
    at `GIF_SCALE` pixels per cell, and a colour bar under it.
    """
    _, ny, nx = forecast.grey.shape
    font = ImageFont.load_default(size=11)
    legend = _gif_legend(nx * GIF_SCALE, font)
    lines = graticule_lines(forecast)
    frames = []
    for minutes, valid, field in zip(
        forecast.lead_minutes, forecast.valid_times, forecast.rain_mmh(), strict=True
    ):
        map_px = (nx * GIF_SCALE, ny * GIF_SCALE)
        frame = Image.new("RGB", (map_px[0], _GIF_TITLE_PX + map_px[1] + _GIF_LEGEND_PX), "white")
        scaled = np.repeat(np.repeat(rain_rgb(field), GIF_SCALE, axis=0), GIF_SCALE, axis=1)
        rain = Image.fromarray(_with_graticule(scaled, lines, GIF_SCALE))
        frame.paste(rain, (0, _GIF_TITLE_PX))
        frame.paste(legend, (0, _GIF_TITLE_PX + map_px[1]))
        valid_hhmm = f"{valid.astimezone(UTC):%H:%M}"
        title = f"{forecast.site_id} {forecast.method} +{minutes:g} min ({valid_hhmm} UTC)"
        ImageDraw.Draw(frame).text((2, 2), title, fill="black", font=font)
        frames.append(frame.convert("P", palette=Image.Palette.ADAPTIVE))
    out = io.BytesIO()
    frames[0].save(
        out, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0
    )
    return out.getvalue()
