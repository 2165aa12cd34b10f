"""K-Means noise mask (METHOD.md step 4): pure functions, no I/O.

Per-pixel monthly averages of a site's normalised frames are clustered with K-Means; clusters
whose centroids have an abnormally high long-term mean (persistent clutter: ground echoes,
interference) become the mask, set to 0 in every frame. Rain moves, so over a month it raises
the average of a region only modestly; clutter stays put and stands out.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from sklearn.cluster import KMeans


@dataclass(frozen=True)
class MaskFitParams:
    n_clusters: int = 3
    clutter_factor: float = 4.0  # centroid mean above this x the median pixel mean ...
    min_clutter_grey: float = 0.1  # ... and above this absolute grey level
    min_frames_per_month: int = 1
    seed: int = 0


@dataclass(frozen=True)
class NoiseMask:
    """Boolean (H, W) mask, True = clutter; ``version`` identifies fit time and content."""

    site_id: str
    version: str
    mask: NDArray[np.bool_]
    months: tuple[str, ...]
    n_frames: int


def monthly_means(
    frames: Iterable[tuple[datetime, NDArray[np.float32]]],
) -> dict[str, NDArray[np.float64]]:
    """Mean grey per pixel for each calendar month "YYYY-MM" of (valid time, grey (H, W))."""
    sums: dict[str, NDArray[np.float64]] = {}
    counts: dict[str, int] = defaultdict(int)
    for valid_time, grey in frames:
        month = valid_time.strftime("%Y-%m")
        if month not in sums:
            sums[month] = np.zeros(grey.shape, dtype=np.float64)
        sums[month] += grey
        counts[month] += 1
    return {m: sums[m] / counts[m] for m in sorted(sums)}


def fit_clutter_mask(
    monthly: NDArray[np.float64], params: MaskFitParams = MaskFitParams()
) -> NDArray[np.bool_]:
    """Mask (H, W) from monthly means (n_months, H, W): the clusters of abnormal long-term mean.

    Each pixel is a point with one coordinate per month; K-Means (scikit-learn) groups them.
    A cluster is clutter when its centroid's mean over months exceeds both
    ``clutter_factor`` x the median long-term pixel mean and ``min_clutter_grey``.
    """
    n_months, h, w = monthly.shape
    points = monthly.reshape(n_months, h * w).T
    n_clusters = min(params.n_clusters, len(np.unique(points, axis=0)))
    if n_clusters < 2:
        return np.zeros((h, w), dtype=bool)
    kmeans = KMeans(n_clusters=n_clusters, n_init=10, random_state=params.seed).fit(points)
    centroid_means = kmeans.cluster_centers_.mean(axis=1)
    long_term = points.mean(axis=1)
    threshold = max(params.clutter_factor * float(np.median(long_term)), params.min_clutter_grey)
    clutter_clusters = np.flatnonzero(centroid_means > threshold)
    return np.isin(kmeans.labels_, clutter_clusters).reshape(h, w)


def mask_version(fitted_at: datetime, mask: NDArray[np.bool_]) -> str:
    """``m<YYYYmmddTHHMMSSZ>-<sha8 of the mask bits>``."""
    digest = hashlib.sha256(np.packbits(mask).tobytes() + str(mask.shape).encode()).hexdigest()
    return f"m{fitted_at.strftime('%Y%m%dT%H%M%SZ')}-{digest[:8]}"
