"""The configured nowcast methods, built once per process and run on batches of sites."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.conversion import grey_to_rain_rate_mmh
from core.files import file_digest
from model.data.events import trained_cadences_min
from model.methods import (
    EnsembleMethod,
    NowcastMethod,
    ProbabilisticMethod,
    get_method,
    learned_names,
)
from model.verification.probability_calibration import ProbabilityCalibration, load_calibration
from model.verification.scores import THRESHOLDS_MMH
from service.settings import InferenceSettings

log = logging.getLogger(__name__)

N_INPUTS = 5
N_LEADS = 15


@dataclass(frozen=True)
class MethodOutput:
    """One method's forecasts for a batch: ``grey`` (B, n_leads, H, W) float32 in [0, 1].

    An ensemble method also gives ``probability`` (B, n_leads, n_thresholds, H, W): the
    fraction of its ``members`` with rain >= each of `THRESHOLDS_MMH`; ``grey`` is then the
    members' mean taken as rain rates.
    """

    name: str
    version: str
    grey: np.ndarray
    seconds: float
    probability: np.ndarray | None = None
    members: int | None = None
    thresholds_mmh: tuple[float, ...] = ()


class RunInterrupted(Exception):
    """`MethodRunner.run` was asked to stop half-way; nothing of the batch is kept."""


class MethodRunner:
    """Builds the methods named in the settings; ``run`` applies each to a batch of inputs."""

    def __init__(self, settings: InferenceSettings) -> None:
        self.methods: dict[str, NowcastMethod] = {}
        self.versions: dict[str, str] = {}
        self.device = "cpu"
        self.dbz_bounds = (settings.dbz_min, settings.dbz_max)
        self.calibrations: dict[str, ProbabilityCalibration] = {}
        self.trained_cadences_min: dict[str, tuple[float, ...]] = {}
        self._cadence_warned: set[tuple[str, str]] = set()
        self.zr = (settings.zr_a, settings.zr_b)
        for name in settings.methods:
            options: dict[str, Any] = settings.method_options(name)
            if name in learned_names():
                from model.paths import default_checkpoint

                checkpoint = settings.checkpoints.get(name) or default_checkpoint(name)
                options = {
                    "checkpoint": checkpoint,
                    "device": settings.infer_device,
                    "bf16": settings.infer_bf16,
                }
                self.versions[name] = f"{name}-{file_digest(Path(checkpoint))}"
            method = get_method(name, **options)
            self.methods[name] = method
            cadences = trained_cadences_min(getattr(method, "meta", None))
            if cadences:
                self.trained_cadences_min[name] = cadences
            self.versions.setdefault(name, getattr(method, "version", name))
            calibration = load_calibration(name)
            if calibration is not None:
                self.calibrations[name] = calibration
                self.versions[name] += f"-calibrated-{calibration.version}"
            device = getattr(method, "device", None)
            if device is not None:
                self.device = str(device)
        log.info("methods %s on %s", self.versions, self.device)

    @property
    def model_version(self) -> str:
        """The first learned model's version (convlstm first), else the first method's name."""
        for name in learned_names():
            if name in self.versions:
                return self.versions[name]
        return next(iter(self.versions.values()), "none")

    def untrained_cadence(self, site_id: str, cadence_min: float) -> list[str]:
        """The learned methods whose training events' cadences (minutes) do not span
        ``cadence_min``: a lead is one radar cycle, so there each lead reads what was learned
        for another time ahead (the model card's independent check measures the cost). Warns
        once per (site, method), naming the remedy."""
        outside = []
        for name, cadences in self.trained_cadences_min.items():
            if min(cadences) <= cadence_min <= max(cadences):
                continue
            outside.append(name)
            if (site_id, name) not in self._cadence_warned:
                self._cadence_warned.add((site_id, name))
                log.warning(
                    "site=%s cadence %g min lies outside the %g-%g min %s was trained at: its "
                    "leads are steps it never learned; verify it against sprog and "
                    "extrapolation, or set the site's default_method (NOWCAST_SITES)",
                    site_id,
                    cadence_min,
                    min(cadences),
                    max(cadences),
                    name,
                )
        return outside

    def run(
        self,
        inputs_grey: np.ndarray,
        n_leads: int = N_LEADS,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[MethodOutput]:
        """inputs_grey (B, 5, H, W) float32 -> one `MethodOutput` per method.

        ``should_stop`` is asked before each method: true, the run ends with `RunInterrupted`
        (a worker asked to stop does not wait for the slow methods of its batch).
        """
        outputs = []
        for name, method in self.methods.items():
            if should_stop is not None and should_stop():
                raise RunInterrupted(f"stopped before {name}")
            if isinstance(method, EnsembleMethod):
                outputs.append(self.run_ensemble(name, method, inputs_grey, n_leads))
                continue
            if isinstance(method, ProbabilisticMethod):
                started = time.perf_counter()
                grey, probability = method.probabilities(
                    inputs_grey, n_leads, THRESHOLDS_MMH, self.dbz_bounds, self.zr
                )
                probability = self._calibrated(name, probability, inputs_grey)
                seconds = time.perf_counter() - started
                version = self.versions[name]
                outputs.append(
                    MethodOutput(name, version, grey, seconds, probability, None, THRESHOLDS_MMH)
                )
                continue
            started = time.perf_counter()
            grey = method(inputs_grey, n_leads)
            outputs.append(
                MethodOutput(name, self.versions[name], grey, time.perf_counter() - started)
            )
        return outputs

    def _calibrated(
        self, name: str, probability: np.ndarray, inputs_grey: np.ndarray
    ) -> np.ndarray:
        """``probability`` through the method's shipped reliability calibration, if any (by
        the issue time's regime, read from ``inputs_grey``, where the calibration has one)."""
        calibration = self.calibrations.get(name)
        if calibration is None:
            return probability
        labels = calibration.labels_of(inputs_grey, self.dbz_bounds, self.zr)
        return calibration.apply(probability, THRESHOLDS_MMH, labels)

    def run_ensemble(
        self, name: str, method: EnsembleMethod, inputs_grey: np.ndarray, n_leads: int
    ) -> MethodOutput:
        """Members once; their mean (as rain rates) and exceedance probabilities from them."""
        started = time.perf_counter()
        from model.methods.steps import ensemble_mean_grey
        from model.verification.probabilistic import exceedance_probabilities

        members = method.ensemble(inputs_grey, n_leads)
        grey = ensemble_mean_grey(members, self.dbz_bounds, self.zr)
        rain = grey_to_rain_rate_mmh(members, *self.dbz_bounds, *self.zr)
        probability = self._calibrated(
            name, exceedance_probabilities(rain, THRESHOLDS_MMH), inputs_grey
        )
        seconds = time.perf_counter() - started
        return MethodOutput(
            name,
            self.versions.get(name, name),
            grey,
            seconds,
            probability,
            int(members.shape[1]),
            THRESHOLDS_MMH,
        )
