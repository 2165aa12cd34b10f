"""Offline verification (``nowcast evaluate``): every issue time of every event, pooled scores.

Each event is one site's frames in time order; every issue time with ``in_frames`` frames
before it and ``out_frames`` after it at an unbroken cadence is forecast (windows never cross
events or gaps). Grey levels are converted back to rain rate (mm/h) and scored with
`model.verification.scores` (event: rain rate >= threshold), contingency tables pooled per lead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ingest.normalize import NormParams
from model.data.events import Event
from model.data.split import WindowRef
from model.methods import EnsembleMethod, NowcastMethod, ProbabilisticMethod
from model.verification.issue_regimes import labels_by_regime
from model.verification.probabilistic import ProbabilityAccumulator
from model.verification.probability_calibration import ProbabilityCalibration
from model.verification.scores import (
    THRESHOLDS_MMH,
    ScoreAccumulator,
    grey_to_mmh,
    nan_to_none,
    threshold_key,
)

JUDGED_MIN_EVENTS = 3
"""The jackknife-t band over events needs cases from this many events in a bin: with two, its
Student's t has one degree of freedom and the band is nearly always [0, 1], a free pass."""


def forecast_windows(
    method: NowcastMethod,
    event: Event,
    starts: Sequence[int],
    in_frames: int,
    out_frames: int,
    batch_size: int = 8,
) -> np.ndarray:
    """Forecasts (len(starts), out, H, W) grey for windows starting at ``starts``."""
    outputs = []
    for i in range(0, len(starts), batch_size):
        batch = np.stack([event.grey[s : s + in_frames] for s in starts[i : i + batch_size]])
        outputs.append(method(batch, out_frames))
    return np.concatenate(outputs) if outputs else np.empty((0, out_frames, *event.grey.shape[1:]))


def _starts(
    event: Event,
    e_index: int,
    in_frames: int,
    out_frames: int,
    windows: Sequence[WindowRef] | None,
) -> list[int]:
    """Window starts in ``event``: all of them, or those of ``windows`` in this event."""
    if windows is None:
        return event.window_starts(in_frames, out_frames)
    return [w.start for w in windows if w.event_index == e_index]


def iter_forecasts(
    method: NowcastMethod,
    events: Sequence[Event],
    in_frames: int = 5,
    out_frames: int = 15,
    batch_size: int = 8,
    windows: Sequence[WindowRef] | None = None,
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(event name, forecast, truth)``, grey (b, out, H, W), per batch of windows of one
    event, in window order.

    Over every window of every event, or only over ``windows`` (e.g. one split's).
    """
    for e_index, event in enumerate(events):
        starts = _starts(event, e_index, in_frames, out_frames, windows)
        for i in range(0, len(starts), batch_size):
            chunk = starts[i : i + batch_size]
            forecast = forecast_windows(method, event, chunk, in_frames, out_frames, batch_size)
            truth = np.stack(
                [event.grey[s + in_frames : s + in_frames + out_frames] for s in chunk]
            )
            yield event.name, forecast, truth


def evaluate_method(
    method: NowcastMethod,
    events: Sequence[Event],
    norm: NormParams,
    in_frames: int = 5,
    out_frames: int = 15,
    batch_size: int = 8,
    windows: Sequence[WindowRef] | None = None,
    by_event: dict[str, ScoreAccumulator] | None = None,
) -> tuple[ScoreAccumulator, int]:
    """Pooled scores of ``method`` and the forecast count.

    Over every window of every event, or only over ``windows`` (e.g. one split's).
    ``by_event``: filled with each event's own counts (event name -> accumulator), from which
    `model.verification.paired` draws the uncertainty of a difference between methods.
    """
    scores = ScoreAccumulator(out_frames)
    count = 0
    for event, forecast, truth in iter_forecasts(
        method, events, in_frames, out_frames, batch_size, windows
    ):
        batch = ScoreAccumulator(out_frames)
        batch.add(grey_to_mmh(forecast, norm), grey_to_mmh(truth, norm))
        scores.merge(batch)
        if by_event is not None:
            by_event.setdefault(event, ScoreAccumulator(out_frames)).merge(batch)
        count += len(forecast)
    return scores, count


def window_batches(
    events: Sequence[Event],
    norm: NormParams,
    in_frames: int,
    out_frames: int,
    batch_size: int,
    windows: Sequence[WindowRef] | None,
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    """(inputs grey (b, in, H, W), observed rain (b, out, H, W) mm/h, the event's name) per
    batch of windows of one event."""
    for e_index, event in enumerate(events):
        starts = _starts(event, e_index, in_frames, out_frames, windows)
        for i in range(0, len(starts), batch_size):
            chunk = starts[i : i + batch_size]
            inputs = np.stack([event.grey[s : s + in_frames] for s in chunk])
            truth = np.stack(
                [event.grey[s + in_frames : s + in_frames + out_frames] for s in chunk]
            )
            yield inputs, grey_to_mmh(truth, norm), event.name


@dataclass
class ProbabilisticEvaluation:
    """What ``nowcast evaluate`` gathers for a probabilistic method: the deterministic
    output's scores, the pooled probabilistic counts, each forecast's reliability counts (for
    `model.verification.probabilistic.reliability_bootstrap`) and the forecast count.
    Probabilities go through ``calibration`` where given."""

    deterministic: ScoreAccumulator
    probabilistic: ProbabilityAccumulator
    calibration: ProbabilityCalibration | None = None
    window_counts: list[np.ndarray] = field(default_factory=list)
    window_observed: list[np.ndarray] = field(default_factory=list)
    window_events: list[str] = field(default_factory=list)
    forecasts: int = 0
    by_regime: dict[tuple[str, str], ProbabilityAccumulator] = field(default_factory=dict)
    """The probabilistic counts per (issue-time regime family, label)
    (`model.verification.issue_regimes`), where known."""
    forecasts_by_regime: dict[tuple[str, str], int] = field(default_factory=dict)
    deterministic_by_event: dict[str, ScoreAccumulator] = field(default_factory=dict)
    """The deterministic output's counts per event (`evaluate_method`'s ``by_event``)."""

    @classmethod
    def start(
        cls,
        out_frames: int,
        n_members: int | None = None,
        calibration: ProbabilityCalibration | None = None,
    ) -> ProbabilisticEvaluation:
        return cls(
            ScoreAccumulator(out_frames),
            ProbabilityAccumulator(out_frames, THRESHOLDS_MMH, n_members),
            calibration,
        )

    def add_batch(
        self,
        forecast_mmh: np.ndarray,
        probability: np.ndarray,
        truth_mmh: np.ndarray,
        members_mmh: np.ndarray | None = None,
        event: str = "",
        regimes: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """One batch: the deterministic forecast (b, L, H, W) and the observation (b, L, H, W)
        in mm/h, the probabilities (b, L, n_thresholds, H, W) and, for an ensemble, its
        members (b, M, L, H, W) in mm/h; each forecast is one window of the bootstrap, and
        ``event`` (the windows' event) one unit of the bootstrap over events. ``regimes``: each
        issue-time regime family -> the b forecasts' labels (`labels_by_regime`), for the
        counts per regime and a calibration by regime."""
        regimes = regimes or {}
        if self.calibration is not None:
            labels = (
                None if self.calibration.regime is None else regimes.get(self.calibration.regime)
            )
            probability = self.calibration.apply(probability, THRESHOLDS_MMH, labels)
        batch = ScoreAccumulator(self.deterministic.n_leads)
        batch.add(forecast_mmh, truth_mmh)
        self.deterministic.merge(batch)
        self.deterministic_by_event.setdefault(
            event, ScoreAccumulator(self.deterministic.n_leads)
        ).merge(batch)
        pooled = self.probabilistic
        for b in range(len(truth_mmh)):
            window = ProbabilityAccumulator(pooled.n_leads, pooled.thresholds_mmh, pooled.n_members)
            for k in range(pooled.n_leads):
                if members_mmh is None:
                    window.add_probabilities(k + 1, probability[b, k], truth_mmh[b, k])
                else:
                    observed = truth_mmh[b, k]
                    window.add_ensemble(k + 1, members_mmh[b, :, k], observed, probability[b, k])
            pooled.merge(window)
            for family, labels in regimes.items():
                key = (family, labels[b])
                self.by_regime.setdefault(
                    key,
                    ProbabilityAccumulator(pooled.n_leads, pooled.thresholds_mmh, pooled.n_members),
                ).merge(window)
                self.forecasts_by_regime[key] = self.forecasts_by_regime.get(key, 0) + 1
            self.window_counts.append(window.arrays["rel_count"].copy())
            self.window_observed.append(window.arrays["rel_observed"].copy())
            self.window_events.append(event)
            self.forecasts += 1

    def scores(self) -> dict[str, Any]:
        """The probabilistic scores with each reliability bin's 95 % band, each threshold ->
        per lead {low, high}: ``reliability_band``, the bootstrap over forecasts;
        ``reliability_band_events``, the bootstrap over events (the windows of one event
        overlap in time, so the event is the independent unit); ``reliability_band_events_t``,
        the jackknife-t over events, which holds its level with few events where the bootstrap
        does not (`reliability_band_jackknife`; the card judges by it), in bins with cases
        from at least `JUDGED_MIN_EVENTS` events;
        ``reliability_events``: how many events."""
        from model.verification.probabilistic import (
            reliability_band_jackknife,
            reliability_bootstrap,
        )

        out = self.probabilistic.scores()
        counts, observed = np.stack(self.window_counts), np.stack(self.window_observed)
        bands = {
            "reliability_band": reliability_bootstrap(counts, observed),
            "reliability_band_events": reliability_bootstrap(
                counts, observed, groups=self.window_events
            ),
            "reliability_band_events_t": reliability_band_jackknife(
                counts, observed, self.window_events, min_groups=JUDGED_MIN_EVENTS
            ),
        }
        for key, (low, high) in bands.items():
            out[key] = {
                threshold_key(t): [
                    {"low": nan_to_none(low[k, j]), "high": nan_to_none(high[k, j])}
                    for k in range(self.probabilistic.n_leads)
                ]
                for j, t in enumerate(self.probabilistic.thresholds_mmh)
            }
        out["reliability_events"] = len(set(self.window_events))
        if self.by_regime:
            reliability: dict[str, dict[str, Any]] = {}
            forecasts: dict[str, dict[str, int]] = {}
            for (family, label), acc in sorted(self.by_regime.items()):
                reliability.setdefault(family, {})[label] = acc.scores()["reliability"]
                forecasts.setdefault(family, {})[label] = self.forecasts_by_regime[family, label]
            out["reliability_by_regime"] = reliability
            out["forecasts_by_regime"] = forecasts
        return out


def evaluate_ensemble(
    method: EnsembleMethod,
    events: Sequence[Event],
    norm: NormParams,
    in_frames: int = 5,
    out_frames: int = 15,
    batch_size: int = 4,
    windows: Sequence[WindowRef] | None = None,
    calibration: ProbabilityCalibration | None = None,
) -> ProbabilisticEvaluation:
    """An ensemble method: its mean (as rain rates) scored deterministically, its members
    probabilistically (Brier, reliability, ROC, CRPS, rank histogram); its probabilities
    through ``calibration`` where given."""
    from model.methods.steps import ensemble_mean_grey
    from model.verification.probabilistic import exceedance_probabilities

    result = ProbabilisticEvaluation.start(out_frames, method.n_members, calibration)
    bounds, zr = (norm.dbz_min, norm.dbz_max), (norm.zr_a, norm.zr_b)
    batches = window_batches(events, norm, in_frames, out_frames, batch_size, windows)
    for inputs, truth, event in batches:
        regimes = labels_by_regime(inputs, bounds, zr)
        members = method.ensemble(inputs, out_frames)  # (b, M, out, H, W)
        members_mmh = grey_to_mmh(members, norm)
        mean_mmh = grey_to_mmh(ensemble_mean_grey(members, bounds, zr), norm)
        probability = exceedance_probabilities(members_mmh, THRESHOLDS_MMH)
        result.add_batch(mean_mmh, probability, truth, members_mmh, event, regimes)
    return result


def evaluate_probabilities(
    method: ProbabilisticMethod,
    events: Sequence[Event],
    norm: NormParams,
    in_frames: int = 5,
    out_frames: int = 15,
    batch_size: int = 8,
    windows: Sequence[WindowRef] | None = None,
    calibration: ProbabilityCalibration | None = None,
) -> ProbabilisticEvaluation:
    """A probabilistic method without members: its deterministic output and its
    probabilities (Brier, reliability, ROC), through ``calibration`` where given."""
    result = ProbabilisticEvaluation.start(out_frames, calibration=calibration)
    bounds, zr = (norm.dbz_min, norm.dbz_max), (norm.zr_a, norm.zr_b)
    batches = window_batches(events, norm, in_frames, out_frames, batch_size, windows)
    for inputs, truth, event in batches:
        grey, probability = method.probabilities(inputs, out_frames, THRESHOLDS_MMH, bounds, zr)
        regimes = labels_by_regime(inputs, bounds, zr)
        result.add_batch(grey_to_mmh(grey, norm), probability, truth, event=event, regimes=regimes)
    return result


def observed_event_cells(
    events: Sequence[Event],
    norm: NormParams,
    in_frames: int = 5,
    out_frames: int = 15,
    windows: Sequence[WindowRef] | None = None,
) -> dict[str, dict[str, int]]:
    """Threshold key -> event name -> observed cells >= threshold over the windows' leads.

    Events without a window are left out.

    The sum over events equals the pooled hits + misses summed over leads: it says which
    events the scores at each threshold rest on.
    """
    out: dict[str, dict[str, int]] = {threshold_key(t): {} for t in THRESHOLDS_MMH}
    for e_index, event in enumerate(events):
        starts = _starts(event, e_index, in_frames, out_frames, windows)
        if not starts:
            continue
        rain = grey_to_mmh(event.grey, norm)
        for t in THRESHOLDS_MMH:
            wet = (rain >= t).sum(axis=(1, 2))
            cells = sum(int(wet[s + in_frames : s + in_frames + out_frames].sum()) for s in starts)
            out[threshold_key(t)][event.name] = cells
    return out


def report(
    method_name: str,
    scores: ScoreAccumulator,
    forecasts: int,
    events: Sequence[Event],
    out_frames: int = 15,
) -> dict[str, Any]:
    """The evaluation JSON: the required keys first, then extras (events, cadences, counts)."""
    cadences = sorted({e.cadence_min for e in events})
    step = cadences[0] if len(cadences) == 1 else 6.0
    result = scores.scores()
    return {
        "method": method_name,
        "forecasts": forecasts,
        "lead_minutes": [step * (k + 1) for k in range(out_frames)],
        "thresholds": list(THRESHOLDS_MMH),
        "csi": result["csi"],
        "far": result["far"],
        "pod": result["pod"],
        "rain_mse": result["rain_mse"],
        "correlation": result["correlation"],
        "event_definition": "rain rate >= threshold (mm/h); contingency tables pooled per lead",
        "cadences_min": cadences,
        "lead_minutes_note": (
            "events of one cadence" if len(cadences) == 1 else "mixed cadences: nominal 6 min steps"
        ),
        "events": [{"name": e.name, "site": e.site_id, "frames": len(e.times)} for e in events],
        "counts": {
            k: v
            for k, v in result.items()
            if k not in ("csi", "far", "pod", "rain_mse", "correlation")
        },
    }
