"""The inference worker (``nowcast infer``): frame events in, nowcasts and verification out.

Workers share the frames stream through one Redis consumer group, so each event reaches one
worker; an entry left pending by a dead worker is claimed by another (XAUTOCLAIM) after
``infer_claim_idle_ms``. For each event (site, valid time t):
1. live verification: every kept forecast whose lead lands on t is scored against the frame
   at t (`service.live_verification`; idempotent, see `service.verification_store`);
2. nowcast: the 5 consecutive frames ending at t are the input (refused, with the reason
   recorded, while the window warms up, across a gap (counted once per gap) or when t is
   more than ``infer_max_behind_min`` older than the site's newest frame: a worker that fell
   behind forecasts the newest first and skips the rest); the sites ready in one read are run
   as one batch through every configured method, and the forecasts of each issue time are
   stored at once and exactly once (`service.forecast_store`);
3. frames that arrived before their forecast (out of order, replays) verify it at once.
The entry is acknowledged only after all of that, so a crash loses nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import redis

from core import keys
from core.frame import Frame
from core.streams import ensure_group
from core.worker import StreamWorker
from ingest.status import site_georef
from ingest.window import WindowError, WindowGapError, WindowStore
from service.forecast import Forecast, RainConversion, parse_time
from service.forecast_store import ForecastStore
from service.live_verification import LiveVerifier
from service.methods_runner import N_INPUTS, N_LEADS, MethodRunner, RunInterrupted
from service.metrics import process_metrics
from service.refusals import behind_reason, describe_gap
from service.settings import InferenceSettings
from service.status_store import StatusStore
from service.verification_store import VerificationStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadyInput:
    """One issue time whose 5 input frames are in the window."""

    site_id: str
    issue_time: datetime
    cadence_min: float
    grey: np.ndarray  # (5, H, W) float32
    norm_version: str


def _issue_order(item: ReadyInput) -> tuple[datetime, str]:
    return item.issue_time, item.site_id


class InferenceWorker(StreamWorker):
    """Consumes frame events until told to stop; one instance per thread."""

    name = "inference"
    interrupt_on_stop = False
    """True: a stop request interrupts the batch in hand between methods, its events left
    pending for the next start (the demo, which must stop in seconds); False: the batch
    finishes first (a warm stop, bounded by ``stop_timeout_s``)."""

    def __init__(
        self,
        settings: InferenceSettings,
        connection: redis.Redis,
        runner: MethodRunner,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        consumer: str | None = None,
    ) -> None:
        super().__init__(connection, settings, consumer)
        self.settings: InferenceSettings = settings
        self.runner = runner
        self.window = WindowStore.from_settings(connection, settings)
        self.forecasts = ForecastStore(connection, settings.forecast_ttl_s)
        self.verification = VerificationStore(connection, settings.verification_ttl_s)
        self.status = StatusStore(connection)
        self.conversion = RainConversion.from_settings(settings)
        self.verifier = LiveVerifier(
            self.window, self.forecasts, self.verification, self.conversion, runner.methods
        )
        self._now = now

    # -- stream ----------------------------------------------------------------------------
    def ensure_group(self) -> None:
        """Create the consumer group at the start of the stream (no event is skipped)."""
        ensure_group(self.redis, keys.EVENTS_STREAM, keys.INFER_GROUP)

    def process_once(self, block_ms: int | None = None) -> int:
        """Handle this consumer's pending entries, orphans of dead workers, then new ones.

        Returns the number of events handled (acknowledged).
        """
        entries = self.read_group(
            keys.EVENTS_STREAM,
            keys.INFER_GROUP,
            self.settings.infer_claim_idle_ms,
            self.settings.infer_batch_max,
            block_ms,
        )
        if entries:
            self.handle(entries)
        return len(entries)

    def work_once(self, block_ms: int) -> int:
        return self.process_once(block_ms)

    def handle(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Verify, forecast and acknowledge a batch of frame events, in valid-time order.

        A worker that fell behind forecasts each site's newest issue time and skips those
        older than the site's newest frame by more than ``infer_max_behind_min`` (reason
        ``behind``), whichever read they arrive in.
        """
        events: list[tuple[str, datetime]] = []
        for _entry_id, fields in entries:
            if not fields:  # trimmed from the stream while pending: acknowledged below
                continue
            try:
                events.append(
                    (fields[b"site"].decode(), parse_time(fields[b"valid_time"].decode()))
                )
            except (KeyError, ValueError, UnicodeDecodeError):
                log.error("malformed frame event %s; skipped", fields)
        ready: list[ReadyInput] = []
        for site_id, valid_time in sorted(events, key=lambda e: e[1]):
            try:
                self.verify_observation(site_id, valid_time)
                prepared = self._prepare(site_id, valid_time)
            except (ValueError, ArithmeticError) as exc:  # a bad stored frame, not Redis
                log.exception("event %s at %s failed", site_id, valid_time)
                self._refuse(site_id, valid_time, "internal_error", repr(exc))
                continue
            if prepared is not None:
                ready.append(prepared)
            ready += self._completed_by(site_id, valid_time)
        ready = sorted({(r.site_id, r.issue_time): r for r in ready}.values(), key=_issue_order)
        if ready:
            try:
                self._forecast(ready)
            except RunInterrupted:  # asked to stop: the events stay pending, redone later
                log.info("stopping: %d issue times left for the next start", len(ready))
                return
            except (ValueError, RuntimeError) as exc:  # a model error must not stop the worker
                log.exception("forecast of %d issue times failed", len(ready))
                for item in ready:
                    self._refuse(item.site_id, item.issue_time, "internal_error", repr(exc))
        ids = [entry_id for entry_id, _ in entries]
        self.redis.xack(keys.EVENTS_STREAM, keys.INFER_GROUP, *ids)

    # -- nowcasts --------------------------------------------------------------------------
    def _cadence(self, site_id: str) -> float | None:
        return self.window.cadence_min(site_id, self.settings.site(site_id).cadence_min)

    def _prepare(self, site_id: str, issue_time: datetime) -> ReadyInput | None:
        if self.forecasts.was_made(site_id, issue_time):
            self.verifier.made(site_id, issue_time)
            return None
        epochs = self.window.epochs(site_id)
        behind = self._behind(site_id, issue_time, epochs)
        try:
            frames = self.window.consecutive_ending(
                site_id, issue_time, N_INPUTS, self.settings.site(site_id).cadence_min
            )
        except WindowGapError as exc:
            starting = len(epochs) < self.settings.window_frames and all(
                t.timestamp() < epochs[0] for t in exc.missing
            )
            if starting:
                have = N_INPUTS - len(exc.missing)
                message = f"warming up: {have} of the {N_INPUTS} input frames are in the window"
                self._refuse(site_id, issue_time, "warming_up", message)
            elif behind:
                self._refuse(site_id, issue_time, "behind", behind)
            else:
                self._refuse_gap(site_id, issue_time, exc, epochs)
            return None
        except WindowError as exc:
            if behind:
                self._refuse(site_id, issue_time, "behind", behind)
            else:
                self._refuse(site_id, issue_time, "warming_up", str(exc))
            return None
        if behind:
            self._refuse(site_id, issue_time, "behind", behind)
            return None
        cadence = self._cadence(site_id)
        assert cadence is not None  # consecutive_ending succeeded
        return self._ready(site_id, issue_time, cadence, frames)

    def _behind(self, site_id: str, issue_time: datetime, epochs: list[int]) -> str | None:
        """Why ``issue_time`` is too old to forecast now (`service.refusals.behind_reason`)."""
        return behind_reason(
            issue_time, epochs, self.settings.window_frames, self.settings.infer_max_behind_min
        )

    def _refuse_gap(
        self, site_id: str, issue_time: datetime, gap: WindowGapError, epochs: list[int]
    ) -> None:
        """Refuse an issue time whose inputs span a gap, counting each gap once.

        The issue times after a gap whose inputs still reach back into it are covered by the
        gap's one refusal: their status says so, the ``refused:gap`` count does not grow.
        """
        last_missing = gap.missing[-1].timestamp()
        resumed = min((e for e in epochs if e > last_missing), default=None)
        before = max((e for e in epochs if e < gap.missing[0].timestamp()), default=None)
        span = describe_gap(gap, before, resumed)
        gap_id = str(resumed)
        reported = self.status.get(site_id).gap_resumed_epoch
        if resumed is not None and reported == gap_id:
            have = sum(1 for e in epochs if resumed <= e <= issue_time.timestamp())
            message = f"after the gap ({span}): {have} of the {N_INPUTS} input frames since it"
            self._refuse(site_id, issue_time, "gap", message, counted=False)
            return
        message = (
            f"gap in the frames of {site_id}: {span}; nowcasts resume {N_INPUTS} frames after it"
        )
        self._refuse(site_id, issue_time, "gap", message, gap_resumed_epoch=gap_id)

    def _completed_by(self, site_id: str, valid_time: datetime) -> list[ReadyInput]:
        """Later issue times whose inputs a frame arriving out of order has just completed.

        Their own events came first and were refused (gap); without this they would never be
        forecast. An issue time still incomplete keeps its refusal, silently.
        """
        cadence = self._cadence(site_id)
        if cadence is None:
            return []
        start = valid_time.timestamp()
        end = start + (N_INPUTS - 1) * cadence * 60
        completed = []
        epochs = self.window.epochs(site_id)
        for epoch in epochs:
            if not start < epoch <= end:
                continue
            issue_time = datetime.fromtimestamp(epoch, UTC)
            if self.forecasts.was_made(site_id, issue_time) or self._behind(
                site_id, issue_time, epochs
            ):
                continue
            try:
                frames = self.window.consecutive_ending(
                    site_id, issue_time, N_INPUTS, self.settings.site(site_id).cadence_min
                )
            except WindowError:
                continue
            completed.append(self._ready(site_id, issue_time, cadence, frames))
        return completed

    @staticmethod
    def _ready(
        site_id: str, issue_time: datetime, cadence: float, frames: list[Frame]
    ) -> ReadyInput:
        return ReadyInput(
            site_id=site_id,
            issue_time=issue_time,
            cadence_min=cadence,
            grey=np.stack([f.grey for f in frames]).astype(np.float32),
            norm_version=frames[-1].norm_version,
        )

    def _refuse(
        self,
        site_id: str,
        issue_time: datetime,
        reason: str,
        message: str,
        counted: bool = True,
        gap_resumed_epoch: str | None = None,
    ) -> None:
        """Record why ``issue_time`` has no nowcast (status hash; ``refused:<reason>`` count)."""
        level = logging.INFO if counted else logging.DEBUG
        log.log(
            level, "no nowcast for %s at %s: %s", site_id, f"{issue_time:%Y-%m-%dT%H:%MZ}", message
        )
        self.status.record_refusal(site_id, issue_time, reason, message, counted, gap_resumed_epoch)

    def _forecast(self, ready: list[ReadyInput]) -> None:
        metrics = process_metrics()
        by_shape: dict[tuple[int, ...], list[ReadyInput]] = {}
        for item in ready:
            self.runner.untrained_cadence(item.site_id, item.cadence_min)
            by_shape.setdefault(item.grey.shape, []).append(item)
        for items in by_shape.values():
            batch = np.stack([item.grey for item in items])
            metrics.inference_batch.observe(len(items))
            should_stop = (lambda: self.stopping) if self.interrupt_on_stop else None
            outputs = self.runner.run(batch, N_LEADS, should_stop=should_stop)
            for output in outputs:
                metrics.inference_latency.labels(output.name).observe(output.seconds)
            created = self._now()
            for i, item in enumerate(items):
                georef = site_georef(self.redis, item.site_id)
                forecasts = [
                    Forecast(
                        site_id=item.site_id,
                        method=output.name,
                        issue_time=item.issue_time,
                        cadence_min=item.cadence_min,
                        grey=output.grey[i],
                        model_version=output.version,
                        norm_version=item.norm_version,
                        conversion=self.conversion,
                        created_at=created,
                        georef=georef,
                        probability=(
                            output.probability[i] if output.probability is not None else None
                        ),
                        thresholds_mmh=output.thresholds_mmh,
                        members=output.members,
                    )
                    for output in outputs
                ]
                if self.forecasts.store_issue(forecasts):
                    log.info(
                        "stored nowcasts site=%s issue=%s methods=%s",
                        item.site_id,
                        f"{item.issue_time:%Y-%m-%dT%H:%MZ}",
                        ",".join(o.name for o in outputs),
                    )
                    self._record_issue(item)
                    self.verifier.backlog(forecasts)

    def _record_issue(self, item: ReadyInput) -> None:
        self.status.record_issue(
            item.site_id, item.issue_time, self.runner.model_version, self._now()
        )

    # -- live verification (service.live_verification) -----------------------------------
    def verify_observation(self, site_id: str, valid_time: datetime) -> int:
        """Score every kept forecast with a lead valid at ``valid_time``; returns how many."""
        cadence = self._cadence(site_id)
        return 0 if cadence is None else self.verifier.observation(site_id, valid_time, cadence)

    # -- loop ------------------------------------------------------------------------------
    def heartbeat_key(self) -> str:
        return f"{keys.INFER_HEALTH}:{self.consumer}"

    def heartbeat_state(self) -> str:
        state = {
            "model_version": self.runner.model_version,
            "methods": list(self.runner.versions),
            "device": self.runner.device,
            "at": time.time(),
        }
        return json.dumps(state)
