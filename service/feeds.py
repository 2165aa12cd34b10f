"""Radar feeds for the demo: files appear in an incoming folder as a radar network delivers them.

- `SyntheticRadar`: the project's synthetic rain (`ingest.synth`) written as CF-NetCDF, one
  frame per cadence / speed seconds, valid times starting a day ago and never in the future;
  with a backlog probe it waits for the pipeline as the replay does;
- `FolderReplay`: real frames from a folder (frame files, or multi-time archives, each time
  step delivered as a frame file of its own), each radar site's frames (from however many
  folders) replayed in valid-time order, all sites side by side, one frame per tick; with a
  backlog probe it never runs ahead of the pipeline (back-pressure) and says how much it
  was held back.
Files are written or copied under a hidden name and renamed, so the ingest worker never reads
a half-written file.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ingest.cf_writer import SYNTH_GRID_MAPPING, feed_file_name, write_cf_frame
from ingest.multitime import archive_step, archive_step_times, default_site_id, is_multitime
from ingest.reader import FRAME_SUFFIXES, peek_site_id, peek_valid_time
from ingest.synth import SynthParams, synth_rain_rate_mmh

log = logging.getLogger(__name__)

SYNTH_SITE = "synth-01"
SYNTH_HISTORY = timedelta(hours=24)
ENDLESS_FRAMES = 1_000_000
BACKLOG_POLL_S = 0.05
SLOWED_REPORT_TICKS = 50  # a replay held back says so every this many ticks
REPLAY_CADENCE_S = 360.0  # the speed a replay reports is relative to one frame per 6 minutes


def _publish(write: Callable[[Path], None], target: Path) -> None:
    """Write through ``write(tmp_path)`` then rename to ``target`` (atomic on one file system)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    write(tmp)
    os.replace(tmp, target)


def _write_rain_frame(
    tmp: Path, rain_mmh: NDArray[np.float32], valid_time: datetime, site_id: str, pixel_km: float
) -> None:
    write_cf_frame(
        tmp, rain_mmh, valid_time, site_id, "rain_rate", pixel_km, grid_mapping=SYNTH_GRID_MAPPING
    )


def _deliver(delivery: Delivery, folder: Path) -> None:
    """Write ``delivery`` into ``folder`` under a hidden name, then rename it (atomic)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".delivery-{os.getpid()}-{threading.get_ident()}.part"
    name = delivery.write(tmp)
    os.replace(tmp, folder / name)


class BackPressure:
    """Waits before a delivery until the pipeline has taken what came before.

    ``backlog(delivered)``, where set, counts the frames delivered but not yet through the
    pipeline (ingested and forecast); `wait` returns once it is at most ``max_backlog``. A
    probe that fails (Redis away) reads as "wait, ask again", said once per outage.
    """

    backlog: Callable[[int], int] | None = None
    _probe_failing: bool = False

    def _pending(self, delivered: int) -> float:
        assert self.backlog is not None
        try:
            pending = float(self.backlog(delivered))
        except Exception as exc:
            if not self._probe_failing:  # once per outage, not at every poll
                log.warning("feed: the pipeline's backlog is unknown (%s); waiting", exc)
            self._probe_failing = True
            return float("inf")
        self._probe_failing = False
        return pending

    def wait(self, delivered: int, max_backlog: float, stop: threading.Event) -> float | None:
        """Seconds waited until the backlog is at most ``max_backlog``; None when stopped."""
        waited = time.monotonic()
        if self.backlog is not None:
            while self._pending(delivered) > max_backlog:
                if stop.wait(BACKLOG_POLL_S):
                    return None
        return time.monotonic() - waited


class SyntheticRadar(BackPressure):
    """Writes synthetic frames of one site into ``incoming`` until stopped; with ``backlog``
    set, never more than one frame ahead of the pipeline."""

    def __init__(
        self,
        incoming: Path,
        interval_s: float,
        cadence_min: float = 6.0,
        site_id: str = SYNTH_SITE,
        seed: int = 0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.incoming = incoming
        self.interval_s = interval_s
        self.cadence = timedelta(minutes=cadence_min)
        self.site_id = site_id
        self.params = SynthParams(cadence_min=cadence_min)
        self.seed = seed
        self._now = now

    def _start_time(self) -> datetime:
        start = self._now() - SYNTH_HISTORY
        step = int(self.cadence.total_seconds())
        epoch = int(start.timestamp())
        return datetime.fromtimestamp(epoch - epoch % step, tz=UTC)

    def run(self, stop: threading.Event) -> None:
        valid_time = self._start_time()
        fields = synth_rain_rate_mmh(ENDLESS_FRAMES, self.params, self.seed)
        for delivered, rain_mmh in enumerate(fields):
            if stop.is_set() or self.wait(delivered, 1, stop) is None:
                return
            target = self.incoming / feed_file_name(self.site_id, valid_time)
            write = partial(
                _write_rain_frame,
                rain_mmh=rain_mmh,
                valid_time=valid_time,
                site_id=self.site_id,
                pixel_km=self.params.pixel_km,
            )
            _publish(write, target)
            log.debug("synthetic frame %s", target.name)
            valid_time += self.cadence
            ahead_s = (valid_time - self._now()).total_seconds()  # never deliver the future
            if stop.wait(max(self.interval_s, ahead_s)):
                return


@dataclass(frozen=True, order=True)
class Delivery:
    """One frame a replay delivers: a frame file, or step ``step`` of a multi-time archive
    (`ingest.multitime`), delivered as a single-frame file of its own."""

    valid_time: datetime
    path: Path
    step: int | None = None

    def write(self, tmp: Path) -> str:
        """Write the frame's bytes to ``tmp``; returns the file name to deliver it under."""
        if self.step is None:
            shutil.copyfile(self.path, tmp)
            return self.path.name
        name, raw = archive_step(self.path, self.step)
        tmp.write_bytes(raw)
        return name


def network_sequences(folder: Path) -> list[list[Delivery]]:
    """The frames under ``folder`` in valid-time order, one sequence per radar site.

    The site is the one the ingest will derive from each file (its attributes; an archive
    without one: its folder's name), so several folders of one site (two events of the same
    network, years apart) form one sequence whose events play one after the other, never
    interleaved; a multi-time archive gives one delivery per time step; a file whose site
    cannot be read goes with the other files of its top-level folder (the ingest quarantines
    it with its reason).
    """
    groups: dict[str, list[Delivery]] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in FRAME_SUFFIXES or not path.is_file():
            continue
        top = path.relative_to(folder).parts[0] if path.parent != folder else ""
        if is_multitime(path):
            site: str | None = default_site_id(path)
            items = [Delivery(t, path, i) for i, t in enumerate(archive_step_times(path))]
        else:
            site = peek_site_id(path)
            valid = peek_valid_time(path) or datetime.min.replace(tzinfo=UTC)
            items = [Delivery(valid, path)]
        groups.setdefault(f"site:{site}" if site else f"folder:{top}", []).extend(items)
    return [sorted(items) for _, items in sorted(groups.items())]


@dataclass
class ReplayProgress:
    """How a replay went: frames delivered, wall-clock seconds, seconds held back."""

    delivered: int = 0
    ticks: int = 0
    elapsed_s: float = 0.0
    held_s: float = 0.0

    def speed(self, cadence_s: float) -> float:
        """Achieved replay speed: simulated seconds (one cadence a tick) per wall second."""
        return self.ticks * cadence_s / self.elapsed_s if self.elapsed_s > 0 else 0.0


class FolderReplay(BackPressure):
    """Copies real frames into ``incoming``: tick k delivers frame k of every site.

    ``backlog``, where given, counts the frames delivered but not yet through the pipeline
    (ingested and forecast); before each tick the replay waits until it is at most
    ``max_backlog`` (default: one tick's frames), so a slow machine slows the replay down
    instead of skipping nowcasts.
    """

    def __init__(
        self,
        source: Path,
        incoming: Path,
        interval_s: float,
        backlog: Callable[[int], int] | None = None,
        max_backlog: int | None = None,
    ) -> None:
        self.source = source
        self.incoming = incoming
        self.interval_s = interval_s
        self.sequences = network_sequences(source)
        if not self.sequences:
            raise ValueError(
                f"--frames {source}: no frame files ({', '.join(FRAME_SUFFIXES)}) in it; "
                "give a folder of radar frames"
            )
        self.backlog = backlog
        self.max_backlog = len(self.sequences) if max_backlog is None else max_backlog
        self.progress = ReplayProgress()

    @property
    def n_frames(self) -> int:
        return sum(len(s) for s in self.sequences)

    def run(self, stop: threading.Event) -> None:
        progress = self.progress
        started = time.monotonic()
        longest = max(len(s) for s in self.sequences)
        for k in range(longest):
            held_s = self.wait(progress.delivered, self.max_backlog, stop)
            if held_s is None:
                return
            progress.held_s += held_s
            for i, sequence in enumerate(self.sequences):
                if k < len(sequence):
                    _deliver(sequence[k], self.incoming / f"site{i:02d}")
                    progress.delivered += 1
            progress.ticks += 1
            progress.elapsed_s = time.monotonic() - started
            asked = REPLAY_CADENCE_S / self.interval_s if self.interval_s else float("inf")
            achieved = progress.speed(REPLAY_CADENCE_S)
            if progress.ticks % SLOWED_REPORT_TICKS == 0 and achieved < 0.9 * asked:
                log.warning(
                    "replay held back by the pipeline: %.0fx real time so far (asked %.0fx); "
                    "every issue time is still forecast",
                    achieved,
                    asked,
                )
            if stop.wait(self.interval_s):
                return
        self.wait(progress.delivered, 0, stop)  # the last tick through the pipeline too
        progress.elapsed_s = time.monotonic() - started
        log.warning(
            "replay of %d frames from %s finished in %.0f s: %.0fx real time, held back %.0f s "
            "by the pipeline",
            progress.delivered,
            self.source,
            progress.elapsed_s,
            progress.speed(REPLAY_CADENCE_S),
            progress.held_s,
        )
