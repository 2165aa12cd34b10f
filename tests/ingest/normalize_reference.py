"""Independent reference code for the pre-processing tests: the disk kernel by supersampling,
the NaN-aware disk average with ``scipy.ndimage.convolve``, bilinear resize with scikit-image."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.transform import resize as sk_resize


def reference_disk(radius: int, supersample: int = 200) -> np.ndarray:
    """Area of each cell of a (2r+1)^2 grid inside the circle of radius r, by supersampling.

    Sub-cell centres at (k + 0.5) / s inside each cell; cell (i, j) spans [i - r - 0.5,
    i - r + 0.5]. Returns the normalised weights (sum 1) in float64.
    """
    n = 2 * radius + 1
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    area = np.zeros((n, n))
    for i in range(n):
        ys = (i - radius) + offsets
        for j in range(n):
            xs = (j - radius) + offsets
            area[i, j] = np.mean(ys[:, None] ** 2 + xs[None, :] ** 2 <= radius**2)
    return area / area.sum()


def grey_of(dbz: np.ndarray, lo: float = -10.0, hi: float = 70.0) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.clip((dbz.astype(np.float64) - lo) / (hi - lo), 0.0, 1.0)


def normalised_convolution(field: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware disk average on the full grid: (average, weight); average 0 where weight 0."""
    valid = np.isfinite(field)
    data = np.where(valid, field, 0.0).astype(np.float64)
    num = ndimage.convolve(data, kernel, mode="constant", cval=0.0)
    den = ndimage.convolve(valid.astype(np.float64), kernel, mode="constant", cval=0.0)
    avg = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return avg, den


def sk_bilinear(field: np.ndarray, target: int) -> np.ndarray:
    return sk_resize(field, (target, target), order=1, mode="edge", anti_aliasing=False)
