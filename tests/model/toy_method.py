"""A toy nowcast method for the registry's tests: its own file, its spec, nothing else."""

from __future__ import annotations

import numpy as np

from model.methods import MethodKind, MethodSpec, check_inputs

SPEC = MethodSpec(
    "toy-halving",
    MethodKind.DETERMINISTIC,
    "tests.model.toy_method:HalvingMethod",
    "halving persistence: the newest frame's grey levels halved (a test's toy)",
    "the newest frame, halved",
)


class HalvingMethod:
    """Every lead is the newest frame's grey levels halved."""

    name = "toy-halving"

    def __call__(self, inputs_grey: np.ndarray, n_leads: int) -> np.ndarray:
        inputs = check_inputs(inputs_grey, n_leads)
        last = inputs[:, -1:] * np.float32(0.5)
        return np.repeat(last, n_leads, axis=1)
