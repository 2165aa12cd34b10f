"""Probabilities from the learned model: the served ConvLSTM's forecast, read as a
neighbourhood ensemble (Theis et al. 2005, Meteorol. Appl. 12, 257-268).

At lead k the probability that a cell reaches a threshold is the fraction of cells within a
square of half-width r_k = round(``radius_per_lead`` * k) cells around it where the network's
forecast reaches it: the uncertainty of where rain will be grows with lead, so the
neighbourhood widens. One parameter, ``radius_per_lead``, fitted on the training blocks to the
Brier score (`model.experiments.fit_neighbourhood`; the test split plays no part). The
deterministic output is the network's own (``method(inputs, n_leads)``).

``method.probabilities(inputs, n_leads, thresholds_mmh, dbz_bounds, zr)`` -> (grey (B, L,
H, W), probability (B, L, n_thresholds, H, W) in [0, 1]): the `ProbabilisticMethod` protocol
the inference worker and ``nowcast evaluate`` use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.conversion import grey_to_rain_rate_mmh
from core.files import file_digest

RADIUS_PER_LEAD_CELLS = 1.0
"""Fitted on the training blocks: the lowest Brier score at 0.5 and 2 mm/h of 0 to 2 cells
per lead (docs/evaluation/neighbourhood-fit.json)."""


def neighbourhood_probabilities(
    rain_mmh: NDArray[np.floating], thresholds_mmh: tuple[float, ...], radius_per_lead: float
) -> NDArray[np.float32]:
    """(B, L, H, W) rain (mm/h) -> (B, L, n_thresholds, H, W): at lead k (1-based) the
    fraction of the (2 r_k + 1)^2 square around each cell at or above each threshold
    (edges: the nearest cell repeated); r_k = round(radius_per_lead * k)."""
    from scipy.ndimage import uniform_filter

    rain = np.asarray(rain_mmh, dtype=np.float32)
    batch, n_leads, height, width = rain.shape
    out = np.empty((batch, n_leads, len(thresholds_mmh), height, width), dtype=np.float32)
    for k in range(n_leads):
        size = 2 * round(radius_per_lead * (k + 1)) + 1
        for j, threshold in enumerate(thresholds_mmh):
            event = (rain[:, k] >= threshold).astype(np.float32)
            out[:, k, j] = uniform_filter(event, size=(1, size, size), mode="nearest")
    return np.clip(out, 0.0, 1.0)


class NeighbourhoodMethod:
    """The served `convlstm` with neighbourhood probabilities (``convlstm-probability``)."""

    name: str = "convlstm-probability"

    def __init__(
        self,
        radius_per_lead: float = RADIUS_PER_LEAD_CELLS,
        checkpoint: Path | None = None,
        **options: Any,
    ) -> None:
        from model.methods import get_method

        if radius_per_lead < 0:
            raise ValueError(f"radius_per_lead must be >= 0, got {radius_per_lead}")
        self.radius_per_lead = float(radius_per_lead)
        from model.paths import default_checkpoint

        path = Path(checkpoint) if checkpoint is not None else default_checkpoint("convlstm")
        self.network = get_method("convlstm", checkpoint=path, **options)
        self.device = getattr(self.network, "device", None)
        self.version = f"{self.name}-{file_digest(path)}-r{self.radius_per_lead:g}"
        """The network's checkpoint (its SHA-256) and the radius: what made a forecast."""

    def __call__(self, inputs_grey: np.ndarray, n_leads: int) -> np.ndarray:
        return self.network(inputs_grey, n_leads)

    def probabilities(
        self,
        inputs_grey: np.ndarray,
        n_leads: int,
        thresholds_mmh: tuple[float, ...],
        dbz_bounds: tuple[float, float],
        zr: tuple[float, float],
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        grey = np.asarray(self.network(inputs_grey, n_leads), dtype=np.float32)
        rain = grey_to_rain_rate_mmh(grey, *dbz_bounds, *zr)
        return grey, neighbourhood_probabilities(rain, thresholds_mmh, self.radius_per_lead)
