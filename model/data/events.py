"""Radar events for training and offline verification: folders of frames, normalised once.

An event is one folder of one site's frames ordered by valid time, or one multi-time archive
file (`ingest.multitime`: one continuous run or rainy event, as ``../shared/data/archives``
keeps them), read one time step at a time. Frames go through the
ingest reader and normaliser (`ingest.reader`, `ingest.normalize`: one implementation of the
pre-processing everywhere); unreadable frames are skipped with a warning. Noise masks live in
Redis and are not applied here: offline work uses unmasked frames.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.frame import FrameRejected, RadarField
from ingest.ingestor import norm_params_for
from ingest.multitime import archive_fields, is_multitime
from ingest.normalize import normalise_dbz
from ingest.reader import frame_files, read_radar_file
from ingest.settings import IngestSettings
from ingest.window import infer_cadence_min

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One site's frames: grey (T, H, W) float32 in [0, 1] at ``times`` (UTC, increasing)."""

    name: str
    site_id: str
    times: tuple[datetime, ...]
    grey: NDArray[np.float32]
    cadence_min: float
    norm_version: str
    collection: str = ""
    """The archive collection (its folder) of an event read from a multi-time archive; ""
    for a folder of frames. The split deals each collection's blocks apart
    (`model.data.split.assign_blocks`), so adding archives leaves the other events' split as
    it was."""

    def window_starts(self, in_frames: int, out_frames: int, stride: int = 1) -> list[int]:
        """Start indices of every (in + out)-frame run at an unbroken cadence."""
        length = in_frames + out_frames
        step = timedelta(minutes=self.cadence_min)
        starts: list[int] = []
        run_start = 0
        for i in range(1, len(self.times) + 1):
            if i == len(self.times) or self.times[i] - self.times[i - 1] != step:
                starts.extend(range(run_start, i - length + 1, stride))
                run_start = i
        return starts


def event_name(source: Path) -> str:
    """An event's name: "<parent folder>/<folder>", or "<folder>/<stem>" of an archive file
    (unique across networks)."""
    return f"{source.parent.name}/{source.stem if source.is_file() else source.name}"


def collection_of(source: Path) -> str:
    """`Event.collection` of an event read from ``source``: an archive file's folder name."""
    return source.parent.name if source.is_file() else ""


def read_fields(folder: Path, settings: IngestSettings) -> list[RadarField]:
    """Every readable frame of ``folder`` (one site), or of a multi-time archive file, in
    valid-time order; unreadable frames are skipped with a warning; ValueError when none is
    left or the sites differ."""
    if folder.is_file():
        fields = list(archive_fields(folder, None, (settings.zr_a, settings.zr_b)))
        if not fields:
            raise ValueError(f"{folder}: no readable frame")
        return fields
    fields = []
    for path in frame_files(folder):
        try:
            fields.append(read_radar_file(path, None, (settings.zr_a, settings.zr_b)))
        except FrameRejected as rejected:
            log.warning("skipping %s: %s", path, rejected)
    if not fields:
        raise ValueError(f"{folder}: no readable frame")
    sites = {f.site_id for f in fields}
    if len(sites) != 1:
        raise ValueError(f"{folder}: one event holds one site, found {sorted(sites)}")
    return sorted(fields, key=lambda f: f.valid_time)


def describe_events(events: list[Event]) -> list[dict[str, object]]:
    """What a checkpoint records of each event it was trained on."""
    return [
        {
            "name": e.name,
            "site": e.site_id,
            "frames": len(e.times),
            "cadence_min": e.cadence_min,
            "first": e.times[0].isoformat(),
            "last": e.times[-1].isoformat(),
        }
        for e in events
    ]


def trained_cadences_min(meta: dict[str, Any] | None) -> tuple[float, ...]:
    """The cadences (minutes) of a checkpoint's training events, from its metadata
    (``training_data.events``, as `describe_events` wrote them); () where it records none."""
    events = ((meta or {}).get("training_data") or {}).get("events") or []
    return tuple(sorted({float(e["cadence_min"]) for e in events if "cadence_min" in e}))


def load_event(folder: Path, settings: IngestSettings, name: str | None = None) -> Event:
    """Read and normalise every frame of ``folder`` (one site), or of a multi-time archive
    file; raises ValueError if none."""
    if folder.is_file():
        return load_archive_event(folder, settings, name)
    fields = read_fields(folder, settings)
    site_id = fields[0].site_id
    params = norm_params_for(settings, site_id)
    grey = np.stack([normalise_dbz(f.dbz, params)[0] for f in fields])
    times = tuple(f.valid_time for f in fields)
    cadence = cadence_min(folder, times, settings, site_id)
    return Event(name or folder.name, site_id, times, grey, cadence, params.version)


def load_archive_event(path: Path, settings: IngestSettings, name: str | None = None) -> Event:
    """Read and normalise every frame of the multi-time archive at ``path`` (one step at a
    time: only the normalised frames are kept); ValueError if no frame is readable."""
    zr = (settings.zr_a, settings.zr_b)
    greys, times, params = [], [], None
    site_id = ""
    for field in archive_fields(path, None, zr):
        site_id = field.site_id
        params = params or norm_params_for(settings, site_id)
        greys.append(normalise_dbz(field.dbz, params)[0])
        times.append(field.valid_time)
    if params is None:
        raise ValueError(f"{path}: no readable frame")
    cadence = cadence_min(path, tuple(times), settings, site_id)
    grey = np.stack(greys)
    event = name or event_name(path)
    return Event(event, site_id, tuple(times), grey, cadence, params.version, collection_of(path))


def cadence_min(
    folder: Path, times: tuple[datetime, ...], settings: IngestSettings, site_id: str
) -> float:
    """The site's configured cadence, else the one its frames' valid times show (minutes)."""
    epochs = [int(t.timestamp()) for t in times]
    cadence = settings.site(site_id).cadence_min or infer_cadence_min(epochs)
    if cadence is None:
        raise ValueError(f"{folder}: a single frame has no cadence")
    return float(cadence)


def event_folders(roots: list[Path]) -> Iterator[Path]:
    """The events under ``roots``: a multi-time archive file is one; a folder of such archives
    holds one each; another folder that holds frames directly is one; else each of its
    sub-folders is looked at the same way."""
    for root in roots:
        if root.is_file():
            if is_multitime(root):
                yield root
            continue
        files = frame_files(root, recursive=False)
        if files and is_multitime(files[0]):
            yield from (f for f in files if is_multitime(f))
            continue
        if files:
            yield root
            continue
        for child in sorted(p for p in root.iterdir() if p.is_dir()):
            yield from event_folders([child])


def load_events(roots: list[Path], settings: IngestSettings) -> list[Event]:
    """Every event under ``roots`` (`event_folders`), normalised, each named
    "<parent folder>/<folder or archive file's stem>" (unique across networks)."""
    return [
        load_event(folder, settings, name=event_name(folder)) for folder in event_folders(roots)
    ]
