"""Radar feeds for the demo: files appear in an incoming folder as a radar network delivers them.

- `SyntheticRadar`: the project's synthetic rain (`ingest.synth`) written as CF-NetCDF, one
  frame per cadence / speed seconds, valid times starting a day ago and never in the future;
- `FolderReplay`: real frames from a folder, each top-level sub-folder (one network or site)
  replayed frame by frame in valid-time order, all networks side by side, one frame per tick.
Files are written or copied under a hidden name and renamed, so the ingest worker never reads
a half-written file.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ingest.cf_writer import feed_file_name, write_cf_frame
from ingest.reader import peek_valid_time
from ingest.synth import SynthParams, synth_rain_rate_mmh
from ingest.worker import FRAME_SUFFIXES

log = logging.getLogger(__name__)

SYNTH_SITE = "synth-01"
SYNTH_HISTORY = timedelta(hours=24)
ENDLESS_FRAMES = 1_000_000


def _publish(write: Callable[[Path], None], target: Path) -> None:
    """Write through ``write(tmp_path)`` then rename to ``target`` (atomic on one file system)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    write(tmp)
    os.replace(tmp, target)


def _write_rain_frame(
    tmp: Path, rain_mmh: NDArray[np.float32], valid_time: datetime, site_id: str, pixel_km: float
) -> None:
    write_cf_frame(tmp, rain_mmh, valid_time, site_id, "rain_rate", pixel_km)


def _copy_from(source: Path, tmp: Path) -> None:
    shutil.copyfile(source, tmp)


class SyntheticRadar:
    """Writes synthetic frames of one site into ``incoming`` until stopped."""

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
        for rain_mmh in fields:
            if stop.is_set():
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


def network_sequences(folder: Path) -> list[list[Path]]:
    """Frame files under ``folder`` in valid-time order, one sequence per top-level entry.

    Each top-level sub-folder (a network or site, possibly with several events below it) is
    one sequence, so the events of one site play one after the other, never interleaved;
    files directly in ``folder`` form one more sequence.
    """
    groups: dict[str, list[tuple[datetime, Path]]] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in FRAME_SUFFIXES and path.is_file():
            valid = peek_valid_time(path) or datetime.min.replace(tzinfo=UTC)
            top = path.relative_to(folder).parts[0] if path.parent != folder else ""
            groups.setdefault(top, []).append((valid, path))
    return [[p for _, p in sorted(items)] for _, items in sorted(groups.items())]


class FolderReplay:
    """Copies real frames into ``incoming``: tick k delivers frame k of every network."""

    def __init__(self, source: Path, incoming: Path, interval_s: float) -> None:
        self.source = source
        self.incoming = incoming
        self.interval_s = interval_s
        self.sequences = network_sequences(source)
        if not self.sequences:
            raise ValueError(
                f"--frames {source}: no frame files ({', '.join(FRAME_SUFFIXES)}) in it; "
                "give a folder of radar frames"
            )

    @property
    def n_frames(self) -> int:
        return sum(len(s) for s in self.sequences)

    def run(self, stop: threading.Event) -> None:
        longest = max(len(s) for s in self.sequences)
        for k in range(longest):
            for i, sequence in enumerate(self.sequences):
                if k < len(sequence):
                    path = sequence[k]
                    target = self.incoming / f"network{i:02d}" / path.name
                    _publish(partial(_copy_from, path), target)
            if stop.wait(self.interval_s):
                return
        log.info("replay of %d frames from %s finished", self.n_frames, self.source)
