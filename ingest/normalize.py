"""Pre-processing of one frame (METHOD.md, "Pre-processing"): pure functions, no I/O.

    dBZ (H, W) --grey--> [0, 1] --centre crop--> (crop, crop) --disk filter--> --resize-->
    (target, target) --noise mask--> grey frame (target, target) float32

NaN marks cells outside radar coverage. They are never turned into rain: the disk filter is a
normalised convolution that averages only the covered cells under the disk, and a cell with no
covered cell under its disk becomes grey 0 ("no echo observed"). The fraction of covered cells is
returned beside the frame so that callers can refuse frames that are mostly outside coverage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, signal

from core.conversion import Float32Array, dbz_to_grey
from core.georef import GridGeoref

NORMALISATION_SCHEME = 1  # bump when the algorithm (not its parameters) changes
PAPER_CELL_KM = 1.0
"""The radar cell size the paper's counts are in: a 330 km crop, a 10 km disk, 100 cells of
3.3 km. A site with ``cell_km`` keeps these extents (`ingest.ingestor.norm_params_for`)."""


@dataclass(frozen=True)
class NormParams:
    """Parameters of the normalisation; paper values by default."""

    dbz_min: float = -10.0
    dbz_max: float = 70.0
    zr_a: float = 200.0
    zr_b: float = 1.6
    crop_cells: int = 330
    target_cells: int = 100
    disk_radius_cells: int = 10
    pad_to_crop: bool = False
    """A grid smaller than the crop is padded with NaN (outside coverage) to the crop's size,
    centred, instead of refused: a coarse grid brought to the input by its cell size."""
    no_echo_dbz: float | None = None
    """Reflectivity at or below this is no echo (grey 0): an archive's code for "no echo"
    (TAASRAD19 stores 0 dBZ for it). None: every value is read as measured."""

    @property
    def version(self) -> str:
        """Stable id of scheme + parameters, e.g. ``n1-3fa2c91b`` (mask version kept apart);
        the options at their defaults leave it as it was before they existed."""
        fields = {
            k: float(v) if isinstance(v, float | int) and not isinstance(v, bool) else v
            for k, v in asdict(self).items()
            if not (k == "pad_to_crop" and v is False) and not (k == "no_echo_dbz" and v is None)
        }
        blob = json.dumps(fields, sort_keys=True).encode()
        return f"n{NORMALISATION_SCHEME}-{hashlib.sha256(blob).hexdigest()[:8]}"


def crop_origin(h: int, w: int, size: int) -> tuple[int, int]:
    """(top row, left column) of the central ``size`` square of an (h, w) grid."""
    if h < size or w < size:
        raise ValueError(f"grid {h} x {w} is smaller than the {size} x {size} centre crop")
    return (h - size) // 2, (w - size) // 2


def target_georef(georef: GridGeoref, params: NormParams) -> GridGeoref:
    """Where the cells of the normalised (target, target) grid lie: the centre crop of the
    file's grid, resized (edges aligned, as `resize`)."""
    size = params.crop_cells
    if params.pad_to_crop and (georef.ny < size or georef.nx < size):
        # the NaN padding of `pad_to`: the crop starts before the grid's first cell
        pad_rows, pad_cols = max(size - georef.ny, 0), max(size - georef.nx, 0)
        padded = georef.cropped(-(pad_rows // 2), -(pad_cols // 2), georef.ny + pad_rows,
                                georef.nx + pad_cols)  # fmt: skip
        top, left = crop_origin(padded.ny, padded.nx, size)
        crop = padded.cropped(top, left, size, size)
        return crop.resized(params.target_cells, params.target_cells)
    top, left = crop_origin(georef.ny, georef.nx, params.crop_cells)
    crop = georef.cropped(top, left, params.crop_cells, params.crop_cells)
    return crop.resized(params.target_cells, params.target_cells)


def centre_crop(field: NDArray[np.floating], size: int, margin: int = 0) -> Float32Array:
    """Central (size + 2 margin) square of a (H, W) field; H, W >= size.

    Where the grid has fewer than ``margin`` cells beyond the crop, the missing border is
    mirrored (reflect) so that the crop always has the requested shape.
    """
    h, w = field.shape
    top, left = crop_origin(h, w, size)
    r0, r1 = top - margin, top + size + margin
    c0, c1 = left - margin, left + size + margin
    window = field[max(r0, 0) : min(r1, h), max(c0, 0) : min(c1, w)].astype(np.float32)
    pad = ((max(-r0, 0), max(r1 - h, 0)), (max(-c0, 0), max(c1 - w, 0)))
    if any(p for pair in pad for p in pair):
        window = np.pad(window, pad, mode="reflect")
    return window


def pad_to(field: NDArray[np.floating], size: int) -> NDArray[np.floating]:
    """(H, W) field padded with NaN, centred, to at least (size, size)."""
    h, w = field.shape
    rows, cols = max(size - h, 0), max(size - w, 0)
    if not rows and not cols:
        return field
    pad = ((rows // 2, rows - rows // 2), (cols // 2, cols - cols // 2))
    return np.pad(field.astype(np.float32), pad, constant_values=np.nan)


@lru_cache(maxsize=8)
def disk_kernel(radius_cells: int, supersample: int = 200) -> Float32Array:
    """Normalised disk kernel of shape (2r+1, 2r+1), like MATLAB's ``fspecial('disk', r)``.

    Each weight is the area of its cell inside the circle of radius r (estimated on a
    ``supersample`` x ``supersample`` sub-grid, within ~1e-6 of the exact overlap), so the
    edge is anti-aliased; weights sum to 1. Cached: callers must not modify the result.
    """
    if radius_cells == 0:
        return np.ones((1, 1), dtype=np.float32)
    n = 2 * radius_cells + 1
    sub = (np.arange(n * supersample) + 0.5) / supersample - (n / 2.0)
    inside = (sub[:, None] ** 2 + sub[None, :] ** 2) <= radius_cells**2
    area = inside.reshape(n, supersample, n, supersample).mean(axis=(1, 3))
    kernel = (area / area.sum()).astype(np.float32)
    kernel.flags.writeable = False
    return kernel


def disk_filter(grey_with_margin: Float32Array, radius_cells: int) -> tuple[Float32Array, float]:
    """Disk-average a (S + 2r, S + 2r) grey field and return the central (S, S) result.

    NaN cells are left out of each average (normalised convolution). Returns the filtered
    field (NaN-free, cells with no covered neighbour set to 0) and the covered fraction of the
    central (S, S) region.
    """
    r = radius_cells
    kernel = disk_kernel(r)
    valid = np.isfinite(grey_with_margin)
    inner = valid[r : valid.shape[0] - r, r : valid.shape[1] - r]
    covered_fraction = float(inner.mean())
    if r == 0:
        return np.where(valid, grey_with_margin, 0.0).astype(np.float32), covered_fraction
    if valid.all():
        filtered = signal.fftconvolve(grey_with_margin, kernel, mode="valid")
    else:
        # float64 here: FFT round-off (~1e-7 in float32) divided by the small weights of
        # disks that touch only a few covered cells would be a visible error
        kernel64 = kernel.astype(np.float64)
        data = np.where(valid, grey_with_margin, 0.0).astype(np.float64)
        summed = signal.fftconvolve(data, kernel64, mode="valid")
        weight = signal.fftconvolve(valid.astype(np.float64), kernel64, mode="valid")
        with np.errstate(invalid="ignore", divide="ignore"):
            filtered = np.where(weight > 1e-6, summed / weight, 0.0)
    # FFT round-off leaves values like -1e-9 or 1 + 1e-7: keep grey inside [0, 1].
    return np.clip(filtered, 0.0, 1.0).astype(np.float32), covered_fraction


def resize(field: Float32Array, target_cells: int) -> Float32Array:
    """Bilinear resize of a (S, S) field to (target, target), cell areas aligned at the edges."""
    zoom = target_cells / field.shape[0], target_cells / field.shape[1]
    out = ndimage.zoom(field, zoom, order=1, mode="nearest", grid_mode=True)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def normalise_dbz(
    dbz: NDArray[np.floating], params: NormParams, noise_mask: NDArray[np.bool_] | None = None
) -> tuple[Float32Array, float]:
    """The whole pre-processing chain: dBZ (H, W) -> grey (target, target) float32 in [0, 1].

    ``noise_mask`` (target, target), True where clutter is, sets those cells to 0.
    Returns the grey frame and the covered (non-NaN) fraction of the centre crop.
    """
    margin = params.disk_radius_cells
    dbz = np.asarray(dbz)
    if params.no_echo_dbz is not None:
        dbz = np.where(dbz <= params.no_echo_dbz, -np.inf, dbz)  # NaN stays NaN
    if params.pad_to_crop:
        dbz = pad_to(dbz, params.crop_cells)
    crop = centre_crop(dbz, params.crop_cells, margin=margin)
    grey = dbz_to_grey(crop, params.dbz_min, params.dbz_max)
    filtered, covered_fraction = disk_filter(grey, params.disk_radius_cells)
    out = resize(filtered, params.target_cells)
    if noise_mask is not None:
        if noise_mask.shape != out.shape:
            raise ValueError(f"noise mask {noise_mask.shape} does not fit frame {out.shape}")
        out = np.where(noise_mask, np.float32(0.0), out)
    return out, covered_fraction
