"""Issue-time regimes: a split of forecasts by what their own inputs show, for calibrations
whose reliability tables differ between regimes (`model.verification.probability_calibration`).

One registry, one entry per family (`IssueRegime`). Each reads a batch of grey inputs (B,
in_frames, H, W) (NaN: outside coverage) and gives every forecast one of two labels; the
second is the "active" one:
- ``wet-fraction`` (dry / wet): the last input has at least `WET_FRACTION` of its covered
  cells at or above `WET_MMH` (docs/evaluation/probability-regimes.md, round 1);
- ``new-echoes`` (quiet / initiating): the last input has a "new echo", a cell at or above
  `WET_MMH` more than `NEW_ECHO_DISTANCE_CELLS` cells from every such cell of the first input.
  Rain that forms far from forecast rain follows rain that formed during the inputs (round 2).

Both read only the inputs, so the inference worker and ``nowcast evaluate`` draw the same
regime for the same forecast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

WET_MMH = 0.5
"""Rain rate (mm/h) from which a cell of an input counts as wet."""

WET_FRACTION = 0.05
"""``wet-fraction``: share of the last input's covered cells at or above `WET_MMH` from which
an issue time is wet."""

NEW_ECHO_DISTANCE_CELLS = 10.0
"""``new-echoes``: distance (grid cells, about 3.3 km each on the 100 x 100 grid) beyond which a
wet cell of the last input is new, i.e. not within reach of the first input's rain (24 minutes
earlier)."""

Bounds = tuple[float, float]


def _wet(inputs_grey: NDArray[np.floating], dbz_bounds: Bounds, zr: Bounds) -> NDArray[np.bool_]:
    """(B, in_frames, H, W) grey -> the same, True where covered and at or above `WET_MMH`."""
    from core.conversion import grey_to_rain_rate_mmh

    grey = np.asarray(inputs_grey, dtype=np.float32)
    rain = grey_to_rain_rate_mmh(np.nan_to_num(grey, nan=0.0), *dbz_bounds, *zr)
    return np.asarray((rain >= WET_MMH) & np.isfinite(grey))


def issue_time_wet_fraction(
    inputs_grey: NDArray[np.floating], dbz_bounds: Bounds, zr: Bounds
) -> NDArray[np.float64]:
    """(B, in_frames, H, W) grey inputs -> (B,) share of the last frame's covered cells (NaN:
    outside coverage, left out) at or above `WET_MMH`; 0 where no cell is covered."""
    last = np.asarray(inputs_grey, dtype=np.float32)[:, -1]
    wet = _wet(last[:, None], dbz_bounds, zr)[:, 0]
    n_covered = np.isfinite(last).reshape(len(last), -1).sum(axis=1)
    n_wet = wet.reshape(len(last), -1).sum(axis=1)
    return np.where(n_covered > 0, n_wet / np.maximum(n_covered, 1), 0.0)


def new_echo_fraction(
    inputs_grey: NDArray[np.floating], dbz_bounds: Bounds, zr: Bounds
) -> NDArray[np.float64]:
    """(B, in_frames, H, W) grey inputs -> (B,) share of the last frame's cells that are new
    echoes: wet, and more than `NEW_ECHO_DISTANCE_CELLS` from every wet cell of the first
    frame (all of them where the first frame is dry)."""
    from scipy.ndimage import distance_transform_edt

    wet = _wet(np.asarray(inputs_grey)[:, [0, -1]], dbz_bounds, zr)
    out = np.zeros(len(wet))
    for b, (first, last) in enumerate(wet):
        if not last.any():
            continue
        if first.any():
            new = last & (distance_transform_edt(~first) > NEW_ECHO_DISTANCE_CELLS)
        else:
            new = last
        out[b] = new.mean()
    return out


@dataclass(frozen=True)
class IssueRegime:
    """A family of two issue-time regimes: ``labels`` (inactive, active); ``active`` reads
    (B, in_frames, H, W) grey inputs, dBZ bounds and Z-R (a, b) -> (B,) bool; ``parameters``
    pin the constants a calibration was fitted with (`check_parameters`)."""

    name: str
    labels: tuple[str, str]
    description: str
    active: Callable[[NDArray[np.floating], Bounds, Bounds], NDArray[np.bool_]]
    parameters: dict[str, float] = field(default_factory=dict)

    def of(self, inputs_grey: NDArray[np.floating], dbz_bounds: Bounds, zr: Bounds) -> list[str]:
        """The label of each of the B forecasts."""
        active = self.active(inputs_grey, dbz_bounds, zr)
        return [self.labels[1] if a else self.labels[0] for a in active]

    def check_parameters(self, stored: dict[str, Any], owner: str) -> None:
        """ValueError unless ``stored`` (from a calibration file) equals this code's."""
        if stored != self.parameters:
            raise ValueError(
                f"{owner}: regimes drawn with {stored}, this code's {self.name} uses "
                f"{self.parameters}: fit the calibration again"
            )


def _wet_fraction_active(
    inputs_grey: NDArray[np.floating], dbz_bounds: Bounds, zr: Bounds
) -> NDArray[np.bool_]:
    return np.asarray(issue_time_wet_fraction(inputs_grey, dbz_bounds, zr) >= WET_FRACTION)


def _new_echoes_active(
    inputs_grey: NDArray[np.floating], dbz_bounds: Bounds, zr: Bounds
) -> NDArray[np.bool_]:
    return np.asarray(new_echo_fraction(inputs_grey, dbz_bounds, zr) > 0.0)


def regimes() -> dict[str, IssueRegime]:
    """The registry: family name -> `IssueRegime`."""
    families = (
        IssueRegime(
            "wet-fraction",
            ("dry", "wet"),
            f"wet: >= {WET_FRACTION:.0%} of the last input at or above {WET_MMH:g} mm/h",
            _wet_fraction_active,
            {"wet_mmh": WET_MMH, "wet_fraction": WET_FRACTION},
        ),
        IssueRegime(
            "new-echoes",
            ("quiet", "initiating"),
            f"initiating: the last input has a cell at or above {WET_MMH:g} mm/h more than "
            f"{NEW_ECHO_DISTANCE_CELLS:g} cells from all such cells of the first",
            _new_echoes_active,
            {"wet_mmh": WET_MMH, "new_echo_distance_cells": NEW_ECHO_DISTANCE_CELLS},
        ),
    )
    return {family.name: family for family in families}


def get_regime(name: str) -> IssueRegime:
    """The family ``name``; ValueError naming the known ones otherwise."""
    known = regimes()
    if name not in known:
        raise ValueError(f"unknown issue-time regime {name!r}; known: {', '.join(known)}")
    return known[name]


def labels_by_regime(
    inputs_grey: NDArray[np.floating], dbz_bounds: Bounds, zr: Bounds
) -> dict[str, list[str]]:
    """Every family's labels for the B forecasts of ``inputs_grey``."""
    return {name: family.of(inputs_grey, dbz_bounds, zr) for name, family in regimes().items()}
