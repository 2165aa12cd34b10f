"""STEPS ensemble nowcast (Bowler et al. 2006, Seed et al. 2013): pysteps' ``steps``.

S-PROG's cascade (`model.methods.sprog`: FFT band-pass levels, an AR(2) model per level, the
last frame's wet-area ratio and distribution by probability matching), plus what makes it an
ensemble: each member adds stochastic noise to every cascade level (pysteps' non-parametric
filter, fitted to the last frame's power spectrum) and perturbs the motion field (``bps``,
Bowler et al.'s model of the motion field's error growing with lead). Members are advected by
THE motion field of `model.advection.motion.motion_field`, the one every method shares.

``method(inputs_grey (B, T, H, W), n_leads)`` returns the ensemble mean (B, n_leads, H, W)
grey, averaged as rain rates (averaging grey levels, i.e. dBZ, would shrink the rain area);
``method.ensemble(...)`` the members (B, M, n_leads, H, W). Probabilities of exceedance come
from the members (`model.verification.probabilistic.exceedance_probabilities`).

Seeded: member noise and motion perturbations draw from ``seed``, so the same inputs give the
same members, in every process. Where STEPS has nothing to model (no rain in the last frame, a
flat input frame, a pysteps error), every member is the extrapolation, as in `sprog`.
pysteps prints its configuration on every call; that is swallowed by redirecting stdout.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.conversion import (
    dbz_to_grey,
    grey_to_rain_rate_mmh,
    rain_rate_mmh_to_dbz,
)
from model.advection.motion import DEFAULT_VARIANT, advect_grey, motion_field, variant_weights
from model.methods import check_inputs
from model.methods.sprog import PROBMATCHING_METHODS, RAIN_THRESHOLD_GREY, octave_levels

log = logging.getLogger(__name__)

DEFAULT_MEMBERS = 20
DEFAULT_SEED = 24
NOISE_METHODS = ("nonparametric", "ssft", "nested")
"""pysteps' noise generators that work on the 100-cell grid; one is needed (its random states
also drive the motion perturbations). pysteps' "parametric" fails its power-law fit there."""
PAPER_DBZ = (-10.0, 70.0)  # the grey scale's dBZ bounds (METHOD.md)
PAPER_ZR = (200.0, 1.6)


def steps_forecast() -> Callable[..., Any]:
    """pysteps' STEPS (``nowcasts.get_method("steps")``), imported quietly."""
    quiet = "pysteps" not in sys.modules
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        from pysteps import nowcasts
    forecast: Callable[..., Any] = nowcasts.get_method("steps")
    return forecast


def ensemble_mean_grey(
    members_grey: NDArray[np.floating],
    dbz_bounds: tuple[float, float] = PAPER_DBZ,
    zr: tuple[float, float] = PAPER_ZR,
) -> NDArray[np.float32]:
    """The members' mean (axis -4: (..., M, L, H, W) -> (..., L, H, W)), taken as rain rates
    and given back as grey levels (grey 0 where the mean is 0 mm/h)."""
    rain = grey_to_rain_rate_mmh(members_grey, *dbz_bounds, *zr).mean(axis=-4)
    with np.errstate(divide="ignore"):
        return dbz_to_grey(rain_rate_mmh_to_dbz(rain, *zr), *dbz_bounds)


class StepsMethod:
    """STEPS ensemble; ``__call__`` gives the ensemble mean, ``ensemble`` the members.

    ``n_members``: ensemble size (20). ``seed``: the random seed of the members (fixed, so a
    rerun gives the same members). ``n_cascade_levels``: None for `octave_levels` of the grid.
    ``ar_order``: AR order per level (2). ``noise``: pysteps' noise generator
    ("nonparametric": the last frame's power spectrum; "ssft", "nested": local, short-space
    Fourier filters). ``perturb_motion``: Bowler et al.'s motion perturbations ("bps") or
    none. ``probmatching``: as in `sprog`.
    ``variant``: the motion field's frame pairs. ``km_per_cell`` and ``cadence_min`` scale
    the motion perturbations (their parameters are fitted in km and minutes): by default the
    method's grid, 330 km of 1-km radar cells resized to 100 cells, every 6 minutes.
    """

    name: str = "steps"

    def __init__(
        self,
        n_members: int = DEFAULT_MEMBERS,
        seed: int = DEFAULT_SEED,
        n_cascade_levels: int | None = None,
        ar_order: int = 2,
        noise: str = "nonparametric",
        perturb_motion: bool = True,
        probmatching: str | None = "cdf",
        variant: str = DEFAULT_VARIANT,
        rain_threshold_grey: float = RAIN_THRESHOLD_GREY,
        km_per_cell: float = 3.3,
        cadence_min: float = 6.0,
    ) -> None:
        if n_members < 2:
            raise ValueError(f"n_members must be >= 2 (an ensemble), got {n_members}")
        if n_cascade_levels is not None and n_cascade_levels < 1:
            raise ValueError(f"n_cascade_levels must be >= 1 or None, got {n_cascade_levels}")
        if ar_order < 1:
            raise ValueError(f"ar_order must be >= 1, got {ar_order}")
        if noise not in NOISE_METHODS:
            raise ValueError(f"noise must be one of {NOISE_METHODS}, got {noise!r}")
        if probmatching not in PROBMATCHING_METHODS:
            raise ValueError(f"probmatching must be one of {PROBMATCHING_METHODS}")
        self.weights = variant_weights(variant)
        self.variant = variant
        self.n_members = int(n_members)
        self.seed = int(seed)
        self.n_cascade_levels = n_cascade_levels
        self.ar_order = int(ar_order)
        self.noise = noise
        self.perturb_motion = bool(perturb_motion)
        self.probmatching = probmatching
        self.rain_threshold_grey = float(rain_threshold_grey)
        self.km_per_cell = float(km_per_cell)
        self.cadence_min = float(cadence_min)
        self.version = f"steps-{self.n_members}m-seed{self.seed}-{self.noise}"
        """What made a forecast: members, seed and noise (the served ``model_version``)."""

    def __call__(self, inputs_grey: np.ndarray, n_leads: int) -> np.ndarray:
        return ensemble_mean_grey(self.ensemble(inputs_grey, n_leads))

    def ensemble(self, inputs_grey: np.ndarray, n_leads: int) -> NDArray[np.float32]:
        """(B, T, H, W) grey inputs -> (B, n_members, n_leads, H, W) float32 grey members."""
        inputs = check_inputs(inputs_grey, n_leads)
        needed = max(len(self.weights), self.ar_order) + 1
        if inputs.shape[1] < needed:
            raise ValueError(f"steps needs at least {needed} input frames, got {inputs.shape[1]}")
        batch, _, height, width = inputs.shape
        out = np.empty((batch, self.n_members, int(n_leads), height, width), dtype=np.float32)
        for b in range(batch):
            frames = np.nan_to_num(np.asarray(inputs[b], dtype=np.float64), nan=0.0)
            out[b] = self.members_one(frames, motion_field(frames, self.variant), int(n_leads))
        return out

    def members_one(
        self, frames_grey: NDArray[np.float64], velocity: NDArray[np.float64], n_leads: int
    ) -> NDArray[np.float32]:
        """(M, n_leads, H, W) grey members from (T, H, W) finite grey frames and their field."""
        last = frames_grey[-1]
        ar_frames = np.asarray(frames_grey[-(self.ar_order + 1) :], dtype=np.float64)
        if not np.any(last >= self.rain_threshold_grey) or any(
            np.ptp(frame) == 0.0 for frame in ar_frames
        ):
            return self._extrapolated(last, velocity, n_leads)
        height, width = last.shape
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                result = steps_forecast()(
                    ar_frames,
                    velocity,
                    n_leads,
                    n_ens_members=self.n_members,
                    n_cascade_levels=self.n_cascade_levels or octave_levels(height, width),
                    precip_thr=self.rain_threshold_grey,
                    noise_method=self.noise,
                    ar_order=self.ar_order,
                    vel_pert_method="bps" if self.perturb_motion else None,
                    probmatching_method=self.probmatching,
                    mask_method="incremental",
                    kmperpixel=self.km_per_cell,  # the bps perturbations' scale
                    timestep=self.cadence_min,
                    seed=self.seed,
                )
        except (ValueError, IndexError, np.linalg.LinAlgError) as err:
            log.warning("steps failed (%s); every member is the extrapolation", err)
            return self._extrapolated(last, velocity, n_leads)
        grey = np.asarray(result, dtype=np.float64)  # NaN: advected in from outside the grid
        if grey.shape != (self.n_members, n_leads, height, width) or not np.isfinite(grey).any():
            log.debug("steps gave a misshapen or empty forecast; extrapolation")
            return self._extrapolated(last, velocity, n_leads)
        return np.clip(np.nan_to_num(grey, nan=0.0), 0.0, 1.0).astype(np.float32)

    def _extrapolated(
        self, last: NDArray[np.float64], velocity: NDArray[np.float64], n_leads: int
    ) -> NDArray[np.float32]:
        one = advect_grey(last, velocity, n_leads)
        return np.repeat(one[None], self.n_members, axis=0)
