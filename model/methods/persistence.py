"""Persistence: the last observed frame repeated for every lead (the floor to beat)."""

from __future__ import annotations

import numpy as np

from model.methods import check_inputs


class PersistenceMethod:
    """``method(inputs_grey (B, T_in, H, W), n_leads) -> (B, n_leads, H, W)`` float32 grey."""

    name: str = "persistence"

    def __call__(self, inputs_grey: np.ndarray, n_leads: int) -> np.ndarray:
        inputs = check_inputs(inputs_grey, n_leads)
        last = inputs[:, -1:]
        return np.repeat(last, int(n_leads), axis=1).astype(np.float32, copy=False)
