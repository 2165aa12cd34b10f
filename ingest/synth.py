"""Synthetic radar-like rain-rate fields: moving, growing and decaying rain (pure numerics).

The generator follows the STEPS idea (Seed 2003; Bowler et al. 2006; pysteps):

1. A latent Gaussian field with a power-law spectrum (2-D power spectral density
   ~ |k|^-beta, flattened beyond an outer scale) stands for the log-rain field.
2. Its Fourier coefficients evolve in time by AR(1) with a correlation that depends on scale:
   a spectral cascade of a few levels (Gaussian bands in log-wavenumber, a partition of unity)
   each has its own lifetime tau_j = lifetime_ref_min * (L_j / lifetime_ref_scale_km)^0.8,
   rho_j = exp(-cadence / tau_j); small scales decorrelate fast, large scales persist. The
   levels' coefficients are blended per wavenumber by the cascade weights, so all levels are
   evolved in one spectral state (one inverse FFT per frame instead of one per level).
3. The whole state is advected each step by velocity * cadence with an exact sub-pixel Fourier
   phase shift on the periodic domain (nothing runs out of the grid); the velocity direction
   turns slowly (rotation_deg_per_h).
4. Each frame is standardised; the pixels above the (1 - wet_fraction) quantile rain, the
   rest are exactly 0 mm/h. Wet pixels are mapped monotonically onto a truncated log-normal
   rain-rate distribution (log field in dBR = 10 log10(R / 1 mm h-1) with a given mean and
   std, truncated at rain_rate_min_mmh), giving rates from ~0.1 to ~100 mm/h with a heavy tail.
5. A slow growth/decay cycle modulates the wet fraction and the mean of the log field.

Array convention: fields are (ny, nx) = (rows, columns); row 0 is the NORTH edge (y decreases
with the row index, as in the CF files of `ingest.cf_writer`), columns run west to east.
velocity_kmh = (u, v): u towards +x (east, increasing column), v towards +y (north,
DECREASING row index).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

Float32Array = NDArray[np.float32]
Float64Array = NDArray[np.float64]
Complex64Array = NDArray[np.complex64]


@dataclass(frozen=True)
class SynthParams:
    """Parameters of the synthetic rain generator. Units are in the names.

    shape: (ny, nx) grid cells. pixel_km: grid spacing (km). cadence_min: time between frames.
    velocity_kmh: (u east, v north) advection velocity at t = 0, turning counter-clockwise by
    rotation_deg_per_h. beta: spectral slope of the latent log-rain field (2-D PSD ~ |k|^-beta)
    at scales below outer_scale_km (flat above). n_cascade_levels, lifetime_ref_min,
    lifetime_ref_scale_km, lifetime_scale_exponent: STEPS-like temporal autocorrelation,
    tau(L) = lifetime_ref_min * (L / lifetime_ref_scale_km)^lifetime_scale_exponent.
    wet_fraction: mean fraction of the area with rain (> 0 mm/h). log_rain_mean_dbr,
    log_rain_std_dbr: mean and std of the (un-truncated) log-normal wet rain rate in dBR
    (10 log10 of mm/h); rain_rate_min_mmh: its lower truncation (the weakest rain).
    cycle_period_h, cycle_wet_fraction_rel, cycle_intensity_db: growth/decay cycle; the wet
    fraction is wet_fraction * (1 + cycle_wet_fraction_rel * sin(2 pi t / period)) and the
    log-rain mean shifts by cycle_intensity_db * sin(2 pi t / period) (t = 0: growing).
    """

    shape: tuple[int, int] = (512, 512)
    pixel_km: float = 1.0
    cadence_min: float = 6.0
    velocity_kmh: tuple[float, float] = (30.0, 10.0)
    rotation_deg_per_h: float = 5.0
    beta: float = 3.0
    outer_scale_km: float = 150.0
    n_cascade_levels: int = 6
    lifetime_ref_min: float = 60.0
    lifetime_ref_scale_km: float = 32.0
    lifetime_scale_exponent: float = 0.8
    wet_fraction: float = 0.3
    log_rain_mean_dbr: float = -1.0
    log_rain_std_dbr: float = 5.0
    rain_rate_min_mmh: float = 0.1
    cycle_period_h: float = 3.0
    cycle_wet_fraction_rel: float = 0.5
    cycle_intensity_db: float = 3.0

    def __post_init__(self) -> None:
        ny, nx = self.shape
        if ny < 8 or nx < 8:
            raise ValueError(f"shape must be at least (8, 8), got {self.shape}")
        if not (self.pixel_km > 0 and self.cadence_min > 0 and self.outer_scale_km > 0):
            raise ValueError("pixel_km, cadence_min and outer_scale_km must be positive")
        if not 0.0 < self.wet_fraction < 1.0:
            raise ValueError(f"wet_fraction must be in (0, 1), got {self.wet_fraction}")
        if not 0.0 <= self.cycle_wet_fraction_rel < 1.0:
            raise ValueError("cycle_wet_fraction_rel must be in [0, 1)")
        if self.n_cascade_levels < 1 or self.lifetime_ref_min <= 0:
            raise ValueError("need n_cascade_levels >= 1 and lifetime_ref_min > 0")
        if self.log_rain_std_dbr <= 0 or self.rain_rate_min_mmh <= 0:
            raise ValueError("log_rain_std_dbr and rain_rate_min_mmh must be positive")


def radial_wavenumber(shape: tuple[int, int]) -> Float64Array:
    """|k| in cycles per pixel on the rfft2 grid of `shape`: array (ny, nx // 2 + 1)."""
    ny, nx = shape
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.rfftfreq(nx)[None, :]
    return np.asarray(np.hypot(ky, kx), dtype=np.float64)


def spectral_amplitude(shape: tuple[int, int], beta: float, outer_scale_px: float) -> Float64Array:
    """Fourier amplitude sqrt(PSD), PSD = (|k|^2 + k0^2)^(-beta/2), k0 = 1 / outer scale.

    Returns (ny, nx // 2 + 1), normalised so the real field has unit variance; the mean (k = 0)
    is zero. Columns kx = 0 and kx = Nyquist get sqrt(2) more because `irfft2` keeps only
    their real part.
    """
    k = radial_wavenumber(shape)
    k0 = 1.0 / outer_scale_px
    psd = (k**2 + k0**2) ** (-beta / 2.0)
    psd[0, 0] = 0.0
    amp = np.sqrt(psd)
    amp[:, 0] *= math.sqrt(2.0)
    if shape[1] % 2 == 0:
        amp[:, -1] *= math.sqrt(2.0)
    # irfft2 variance: kx > 0 bins count twice (their mirror), the two special columns once.
    weights = np.full(amp.shape, 2.0)
    weights[:, 0] = 1.0
    if shape[1] % 2 == 0:
        weights[:, -1] = 1.0
    variance = float(np.sum(weights * amp**2 / 2.0)) / float(shape[0] * shape[1]) ** 2
    return np.asarray(amp / math.sqrt(variance), dtype=np.float64)


def cascade_weights(k_cpp: Float64Array, n_levels: int, domain_px: float) -> Float64Array:
    """Partition of unity over `n_levels` cascade levels: array (n_levels, *k_cpp.shape).

    Level j is a Gaussian band in log-wavenumber centred on k_j, geometric from 1/domain_px
    to 0.5 cycles per pixel (Nyquist); the weights sum to 1 at every wavenumber.
    """
    k_centres = np.geomspace(1.0 / domain_px, 0.5, n_levels)
    log_k = np.log(np.maximum(k_cpp, 0.5 / domain_px))[None, ...]
    spacing = math.log(k_centres[1] / k_centres[0]) if n_levels > 1 else 1.0
    w = np.exp(-0.5 * ((log_k - np.log(k_centres)[:, None, None]) / spacing) ** 2)
    return np.asarray(w / w.sum(axis=0, keepdims=True), dtype=np.float64)


def level_autocorrelation(params: SynthParams) -> Float64Array:
    """Lag-one (one cadence) AR(1) correlation of each cascade level: array (n_levels,).

    rho_j = exp(-cadence_min / tau_j), tau_j = lifetime_ref_min * (L_j / ref)^exponent, with
    L_j = pixel_km / k_j the level's central scale in km (large scales first).
    """
    ny, nx = params.shape
    k_centres = np.geomspace(1.0 / max(ny, nx), 0.5, params.n_cascade_levels)
    scale_km = params.pixel_km / k_centres
    tau_min = (
        params.lifetime_ref_min
        * (scale_km / params.lifetime_ref_scale_km) ** params.lifetime_scale_exponent
    )
    return np.asarray(np.exp(-params.cadence_min / tau_min), dtype=np.float64)


def wavenumber_autocorrelation(params: SynthParams) -> Float64Array:
    """Per-wavenumber lag-one correlation: the levels' rho blended by the cascade weights.

    Returns (ny, nx // 2 + 1); decreases monotonically from large to small scales.
    """
    k = radial_wavenumber(params.shape)
    weights = cascade_weights(k, params.n_cascade_levels, float(max(params.shape)))
    rho = np.tensordot(level_autocorrelation(params), weights, axes=1)
    return np.asarray(np.clip(rho, 0.0, 1.0 - 1e-9), dtype=np.float64)


def velocity_at_kmh(params: SynthParams, time_h: float) -> tuple[float, float]:
    """(u east, v north) in km/h at `time_h` hours: the initial vector turned counter-clockwise."""
    theta = math.radians(params.rotation_deg_per_h * time_h)
    u, v = params.velocity_kmh
    return (
        u * math.cos(theta) - v * math.sin(theta),
        u * math.sin(theta) + v * math.cos(theta),
    )


def shift_phase(shape: tuple[int, int], shift_rows: float, shift_cols: float) -> Complex64Array:
    """Fourier factor that moves a field by (rows, cols) pixels (sub-pixel, periodic).

    Multiply an rfft2 spectrum (ny, nx // 2 + 1) by it; positive shifts move content towards
    larger indices.
    """
    ny, nx = shape
    phase_y = np.exp(-2j * np.pi * np.fft.fftfreq(ny) * shift_rows)
    phase_x = np.exp(-2j * np.pi * np.fft.rfftfreq(nx) * shift_cols)
    return np.asarray(phase_y[:, None] * phase_x[None, :], dtype=np.complex64)


def _complex_noise(rng: np.random.Generator, shape: tuple[int, int]) -> Complex64Array:
    """Standard complex Gaussian noise (E|z|^2 = 1), array (ny, nx // 2 + 1)."""
    ny, nx = shape
    pairs = rng.standard_normal((ny, nx // 2 + 1, 2), dtype=np.float32)
    noise = pairs.view(np.complex64)[..., 0]
    noise *= np.float32(1.0 / math.sqrt(2.0))
    return np.asarray(noise, dtype=np.complex64)


def synth_latent_fields(
    n_frames: int, params: SynthParams = SynthParams(), seed: int = 0
) -> Iterator[Float32Array]:
    """Latent log-rain fields: standardised (mean 0, std 1) float32 arrays of params.shape.

    Power-law spectrum, scale-dependent AR(1) evolution and advection as in the module doc;
    deterministic for a seed.
    """
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    rng = np.random.default_rng(seed)
    shape = params.shape
    amp = spectral_amplitude(shape, params.beta, params.outer_scale_km / params.pixel_km)
    rho = wavenumber_autocorrelation(params)
    innovation_amp = (amp * np.sqrt(1.0 - rho**2)).astype(np.float32)
    rho32 = rho.astype(np.float32)
    state = _complex_noise(rng, shape) * amp.astype(np.float32)
    dt_h = params.cadence_min / 60.0
    for i in range(n_frames):
        if i > 0:
            u_kmh, v_kmh = velocity_at_kmh(params, (i - 0.5) * dt_h)
            shift_cols = u_kmh * dt_h / params.pixel_km
            shift_rows = -v_kmh * dt_h / params.pixel_km  # north = decreasing row
            state *= shift_phase(shape, shift_rows, shift_cols) * rho32
            state += _complex_noise(rng, shape) * innovation_amp
        field = np.fft.irfft2(state, s=shape)
        field -= field.mean()
        field /= max(float(field.std()), 1e-12)
        yield np.asarray(field, dtype=np.float32)


def cycle_state(params: SynthParams, time_h: float) -> tuple[float, float]:
    """(wet fraction, log-rain mean in dBR) of the growth/decay cycle at `time_h` hours."""
    phase = math.sin(2.0 * math.pi * time_h / params.cycle_period_h)
    wet_fraction = params.wet_fraction * (1.0 + params.cycle_wet_fraction_rel * phase)
    mean_dbr = params.log_rain_mean_dbr + params.cycle_intensity_db * phase
    return min(max(wet_fraction, 1e-4), 0.999), mean_dbr


def rain_rate_from_latent(
    latent: NDArray[np.floating],
    wet_fraction: float,
    log_rain_mean_dbr: float,
    log_rain_std_dbr: float,
    rain_rate_min_mmh: float,
) -> Float32Array:
    """Rain rate (mm/h, float32, same shape as `latent`) from a standardised latent field.

    The pixels above the (1 - wet_fraction) quantile of `latent` rain; the others are 0.
    Wet pixels map monotonically (by their Gaussian exceedance probability relative to the
    threshold's) onto a log-normal with the given dBR mean/std truncated below at
    rain_rate_min_mmh: the rain edge is at rain_rate_min_mmh, the cores reach ~100 mm/h.
    """
    z = np.asarray(latent, dtype=np.float64)
    flat = z.ravel()
    k = min(max(round((1.0 - wet_fraction) * flat.size), 0), flat.size - 1)
    threshold = float(np.partition(flat, k)[k])
    wet = z > threshold
    rain = np.zeros(z.shape, dtype=np.float32)
    if not wet.any():
        return rain
    # exceedance probability within the wet area: 1 at the edge, -> 0 in the cores
    p_rel = np.clip(ndtr(-z[wet]) / ndtr(-threshold), 1e-300, 1.0)
    dbr_min = 10.0 * math.log10(rain_rate_min_mmh)
    tail_min = float(ndtr(-(dbr_min - log_rain_mean_dbr) / log_rain_std_dbr))  # P(dBR > min)
    dbr = log_rain_mean_dbr - log_rain_std_dbr * ndtri(p_rel * tail_min)
    rain[wet] = np.power(10.0, np.maximum(dbr, dbr_min) / 10.0)
    return rain


def synth_rain_rate_mmh(
    n_frames: int, params: SynthParams = SynthParams(), seed: int = 0
) -> Iterator[Float32Array]:
    """Yield `n_frames` rain-rate fields (mm/h), float32 arrays of params.shape, >= 0, no NaN.

    Frame i is valid at i * params.cadence_min minutes. Deterministic for a seed.
    """
    dt_h = params.cadence_min / 60.0
    for i, latent in enumerate(synth_latent_fields(n_frames, params, seed)):
        wet_fraction, mean_dbr = cycle_state(params, i * dt_h)
        yield rain_rate_from_latent(
            latent, wet_fraction, mean_dbr, params.log_rain_std_dbr, params.rain_rate_min_mmh
        )
