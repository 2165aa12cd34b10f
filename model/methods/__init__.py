"""Nowcast methods: one file per method, one registry of their specs (`model.methods.specs`).

``get_method(name, **options)`` returns a `NowcastMethod`; a wrong name raises ValueError
listing the valid names (like pysteps' ``motion.get_method``). A method's `MethodSpec` names
its factory as an import path ("module:attribute"), imported on first use, so importing this
package loads neither torch nor pysteps.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

import numpy as np

from model.methods.specs import MethodKind, MethodSpec, get_spec, method_specs

__all__ = [
    "EnsembleMethod",
    "MethodKind",
    "MethodSpec",
    "NowcastMethod",
    "ProbabilisticMethod",
    "check_inputs",
    "get_method",
    "get_spec",
    "learned_names",
    "method_names",
    "method_specs",
    "probabilistic_names",
]


@runtime_checkable
class NowcastMethod(Protocol):
    """A nowcast: grey frames in, grey frames out.

    ``method(inputs_grey, n_leads)``: inputs_grey (B, T_in, H, W) float32 grey levels in
    [0, 1], oldest frame first; returns (B, n_leads, H, W) float32 grey in [0, 1], lead 1 first.
    """

    name: str

    def __call__(self, inputs_grey: np.ndarray, n_leads: int) -> np.ndarray: ...


@runtime_checkable
class EnsembleMethod(NowcastMethod, Protocol):
    """A nowcast method that also gives its ensemble (probabilities come from it).

    ``method.ensemble(inputs_grey, n_leads)``: (B, T_in, H, W) -> (B, n_members, n_leads, H, W)
    float32 grey members; calling the method gives their mean.
    """

    n_members: int

    def ensemble(self, inputs_grey: np.ndarray, n_leads: int) -> np.ndarray: ...


@runtime_checkable
class ProbabilisticMethod(NowcastMethod, Protocol):
    """A nowcast method that gives probabilities of exceedance without members.

    ``method.probabilities(inputs_grey, n_leads, thresholds_mmh, dbz_bounds, zr)`` -> (grey
    (B, n_leads, H, W), probability (B, n_leads, n_thresholds, H, W) in [0, 1]); the
    conversion (dBZ bounds of the grey scale, Z-R a and b) says what the thresholds mean.
    """

    def probabilities(
        self,
        inputs_grey: np.ndarray,
        n_leads: int,
        thresholds_mmh: tuple[float, ...],
        dbz_bounds: tuple[float, float],
        zr: tuple[float, float],
    ) -> tuple[np.ndarray, np.ndarray]: ...


def probabilistic_names() -> tuple[str, ...]:
    """The methods whose forecasts carry probabilities of exceedance."""
    return tuple(name for name, spec in method_specs().items() if spec.probabilistic)


def learned_names() -> tuple[str, ...]:
    """The methods that load a trained checkpoint: every registered architecture."""
    from model.nets.architectures import architecture_names

    return architecture_names()


def method_names() -> tuple[str, ...]:
    """Names accepted by `get_method`."""
    return tuple(method_specs())


def get_method(name: str, **options: Any) -> NowcastMethod:
    """The nowcast method ``name`` built with ``options`` (method-specific keywords)."""
    spec = get_spec(name)
    if spec.name in learned_names():
        options = {"architecture": spec.name, **options}
    module_name, _, attribute = spec.factory.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    method: NowcastMethod = factory(**options)
    return method


def check_inputs(inputs_grey: np.ndarray, n_leads: int) -> np.ndarray:
    """Validated inputs as float32 (B, T_in, H, W); ValueError on a wrong shape or n_leads."""
    inputs = np.asarray(inputs_grey, dtype=np.float32)
    if inputs.ndim != 4 or inputs.shape[1] < 1:
        raise ValueError(f"inputs_grey must be (B, T_in, H, W), got shape {inputs.shape}")
    if int(n_leads) < 1:
        raise ValueError(f"n_leads must be >= 1, got {n_leads}")
    return inputs
