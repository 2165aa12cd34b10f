"""Every real frame in ../shared/data/radar ingests into a window (skips without the data)."""

from __future__ import annotations

import pytest

from ingest.ingestor import Ingestor
from ingest.reader import read_radar_file
from ingest.worker import IngestWorker
from tests.ingest.helpers import small_settings


def sites_in(folder):
    """The site of each event folder (the first frame of every folder that holds frames)."""
    folders = {path.parent for path in folder.rglob("*.nc")}
    return {read_radar_file(min(f.glob("*.nc"))).site_id for f in folders}


@pytest.mark.real_data
def test_all_real_frames_ingest(shared_radar, tmp_path, redis_conn):
    settings = small_settings(
        tmp_path / "data", crop_cells=330, target_cells=100, disk_radius_cells=10, window_frames=40
    )
    worker = IngestWorker(Ingestor(settings, redis_conn), settings, settle_s=0.0)
    files = sorted(shared_radar.rglob("*.nc"))
    expected_sites = sites_in(shared_radar)
    assert {"melb-2", "mtstapl-66", "fi-fmi-composite", "nl-knmi-composite"} <= expected_sites
    tally = worker.run_folders([shared_radar], watch=False)
    assert tally.by_outcome.get("quarantined", 0) == 0, tally.by_outcome
    assert sum(tally.by_outcome.values()) == len(files)
    assert set(worker.ingestor.window.sites()) == expected_sites
    for site in expected_sites:
        status = worker.ingestor.window.status(site)
        assert status.count == 40
        frames = worker.ingestor.window.last_consecutive(site, 5)
        assert all(f.grey.shape == (100, 100) for f in frames)
    assert worker.ingestor.window.status("melb-2").cadence_min == 6
    assert worker.ingestor.window.status("mtstapl-66").cadence_min == 10
    assert worker.ingestor.window.status("nl-knmi-composite").cadence_min == 5
