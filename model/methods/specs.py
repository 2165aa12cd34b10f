"""One `MethodSpec` per nowcast method, in one registry (pysteps' ``nowcasts.get_method`` table,
with what the service needs to know of a method besides how to build it).

A spec names the method, its kind (`MethodKind`: deterministic, ensemble, probabilistic), its
factory ("module:attribute", imported on first use, so this module loads neither torch nor
pysteps), whether it loads a trained checkpoint, its reference (the paper and implementation
cited in every product: the NetCDF ``references`` attribute) and one sentence for the model
card and the docs. The learned methods are the networks of the architecture registry
(`model.nets.architectures`), one spec each. `register_method` adds a method: its own file
and its spec are all a new method needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from model.nets.architectures import PAPER, architecture_names, get_architecture

PYSTEPS = (
    "Pulkkinen et al. (2019), Pysteps: an open-source Python library for probabilistic "
    "precipitation nowcasting (v1.0), Geosci. Model Dev. 12, 4185-4219"
)


class MethodKind(StrEnum):
    """What a method's forecast carries: rain only, members, or probabilities."""

    DETERMINISTIC = "deterministic"
    ENSEMBLE = "ensemble"  # members; its rain is their mean; probabilities from the members
    PROBABILISTIC = "probabilistic"  # probabilities of exceedance without members


@dataclass(frozen=True)
class MethodSpec:
    """One nowcast method: how to build it and how every product describes it."""

    name: str
    kind: MethodKind
    factory: str  # "module:attribute" of the class (or function) that builds the method
    reference: str  # what it is and where it is described: the products' citation
    summary: str  # one sentence for the model card and the docs
    needs_checkpoint: bool = False

    @property
    def probabilistic(self) -> bool:
        """Whether its forecasts carry probabilities of exceedance."""
        return self.kind is not MethodKind.DETERMINISTIC


_BASELINES: tuple[MethodSpec, ...] = (
    MethodSpec(
        "persistence",
        MethodKind.DETERMINISTIC,
        "model.methods.persistence:PersistenceMethod",
        f"Eulerian persistence of the newest observed frame; baseline of {PAPER}",
        "the newest observed frame, kept for every lead",
    ),
    MethodSpec(
        "extrapolation",
        MethodKind.DETERMINISTIC,
        "model.methods.extrapolation:ExtrapolationMethod",
        "Lucas-Kanade optical flow and semi-Lagrangian extrapolation (ROVER-like): "
        f"{PYSTEPS}; baseline of {PAPER}",
        "the newest frame moved along the optical-flow field (pysteps)",
    ),
    MethodSpec(
        "extrapolation-inflow",
        MethodKind.DETERMINISTIC,
        "model.methods.extrapolation:InflowExtrapolationMethod",
        "Lucas-Kanade optical flow and semi-Lagrangian extrapolation with the rain flowing in "
        "from beyond the grid read at its upwind edge (this service's edge inflow, the "
        f"Lagrangian ConvLSTM's zero start, after Ritvanen et al. 2023, L-CNN): {PYSTEPS}",
        "extrapolation, with rain flowing in at the upwind edge where pysteps reads none",
    ),
    MethodSpec(
        "sprog",
        MethodKind.DETERMINISTIC,
        "model.methods.sprog:SprogMethod",
        "S-PROG: cascade decomposition, AR(2) per level and semi-Lagrangian extrapolation "
        f"(Seed 2003, J. Appl. Meteor. 42, 381-388), as implemented in {PYSTEPS}",
        "S-PROG: extrapolation whose small scales decay as each nowcast's own inputs show",
    ),
    MethodSpec(
        "steps",
        MethodKind.ENSEMBLE,
        "model.methods.steps:StepsMethod",
        "STEPS: Short-Term Ensemble Prediction System (Bowler, Pierce and Seed 2006, Q. J. R. "
        "Meteorol. Soc. 132, 2127-2155; Seed, Pierce and Norman 2013, Water Resour. Res. 49, "
        f"6624-6641), as implemented in {PYSTEPS}",
        "the STEPS ensemble: S-PROG's cascade with stochastic noise and motion perturbations",
    ),
    MethodSpec(
        "convlstm-probability",
        MethodKind.PROBABILISTIC,
        "model.methods.neighbourhood:NeighbourhoodMethod",
        "neighbourhood probabilities (Theis, Hense and Damrath 2005, Meteorol. Appl. 12, "
        "257-268) of the Lagrangian ConvLSTM's forecast, the neighbourhood widening with lead; "
        f"the network: {get_architecture('convlstm').reference}",
        "the served ConvLSTM's forecast read as a neighbourhood ensemble, calibrated",
        needs_checkpoint=True,
    ),
)

_REGISTERED: dict[str, MethodSpec] = {}
"""Methods added by `register_method` (a deployment's own, a test's)."""


def _learned_spec(name: str) -> MethodSpec:
    architecture = get_architecture(name)
    return MethodSpec(
        name,
        MethodKind.DETERMINISTIC,
        architecture.method,
        architecture.reference,
        f"the {name} network ({architecture.cell} cells"
        f"{', Lagrangian' if architecture.lagrangian else ''}), trained",
        needs_checkpoint=True,
    )


def method_specs() -> dict[str, MethodSpec]:
    """Every method's spec by name: the baselines, the learned ones, then registered ones."""
    specs = {spec.name: spec for spec in _BASELINES}
    specs.update({name: _learned_spec(name) for name in architecture_names()})
    specs.update(_REGISTERED)
    return specs


def get_spec(name: str) -> MethodSpec:
    """The spec of method ``name`` (any case); ValueError listing the valid names."""
    specs = method_specs()
    try:
        return specs[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown nowcast method {name!r}; valid names: {', '.join(sorted(specs))}"
        ) from None


def register_method(spec: MethodSpec) -> None:
    """Add a method to the registry (a name already taken is refused)."""
    if spec.name in method_specs():
        raise ValueError(f"nowcast method {spec.name!r} is registered already")
    _REGISTERED[spec.name] = spec


def unregister_method(name: str) -> None:
    """Remove a method `register_method` added (the shipped ones stay)."""
    _REGISTERED.pop(name, None)
