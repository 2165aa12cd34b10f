"""Rebuild windows from the raw archive after Redis lost its data (``nowcast ingest --rebuild``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ingest.ingestor import Ingestor
from ingest.reader import read_radar_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RebuildReport:
    site_id: str
    frames: int


def rebuild_windows(ingestor: Ingestor, site_ids: list[str] | None = None) -> list[RebuildReport]:
    """Replace each site's window with its newest archived frames, normalised again.

    No frame events are emitted: the frames were announced when they first arrived.
    """
    reports = []
    zr = (ingestor.settings.zr_a, ingestor.settings.zr_b)
    for site_id in site_ids or ingestor.archive.sites():
        paths = list(ingestor.archive.frames(site_id))[-ingestor.window.size :]
        ingestor.window.clear(site_id)
        for path in paths:
            field = read_radar_file(path, site_id, zr)
            ingestor.window.insert(ingestor.normalise(field), emit_event=False)
        log.info("rebuilt window of %s from %d archived frames", site_id, len(paths))
        reports.append(RebuildReport(site_id, len(paths)))
    return reports
