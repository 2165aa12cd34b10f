"""A real-data replay through the demo's pipeline: back-pressure, events in time order, gaps."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from core import keys
from ingest.reader import peek_site_id, peek_valid_time
from service.demo import Pipeline, pipeline_backlog
from service.feeds import FolderReplay, network_sequences
from service.methods_runner import MethodRunner
from tests.service.helpers import service_settings

FMI_EVENTS = ("fmi-finland-5min-20160928", "fmi-finland-5min-20170509")


def _link(files: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True)
    for path in files:
        (folder / path.name).symlink_to(path)


def _frames(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.nc"), key=lambda p: peek_valid_time(p) or 0)


def test_real_frames_replay_one_site_at_a_time_its_events_in_time_order(shared_radar):
    sequences = network_sequences(shared_radar)
    sites = [{peek_site_id(d.path) for d in sequence} for sequence in sequences]
    assert all(len(s) == 1 for s in sites), "one site per sequence"
    assert len({next(iter(s)) for s in sites}) == len(sequences), "one sequence per site"
    for sequence in sequences:
        times = [peek_valid_time(d.path) for d in sequence]
        assert times == [d.valid_time for d in sequence]
        assert times == sorted(times)
    present = [name for name in FMI_EVENTS if (shared_radar / name).is_dir()]
    if len(present) == 2:  # two events of one network, a year apart: one sequence, in order
        (fmi,) = [s for s in sequences if s[0].path.parent.name == present[0]]
        assert [d.path.parent.name for d in fmi] == [present[0]] * len(
            _frames(shared_radar / present[0])
        ) + [present[1]] * len(_frames(shared_radar / present[1]))


def test_a_fast_replay_waits_for_the_pipeline_and_reports_one_gap_between_events(
    shared_radar, tmp_path, redis_conn, small_checkpoint
):
    if not all((shared_radar / name).is_dir() for name in FMI_EVENTS):
        pytest.skip(f"needs both FMI events {FMI_EVENTS} in {shared_radar}")
    source = tmp_path / "frames"
    _link(_frames(shared_radar / FMI_EVENTS[0])[-6:], source / "fmi-a")
    _link(_frames(shared_radar / FMI_EVENTS[1])[:8], source / "fmi-b")
    _link(_frames(shared_radar / "bom-melbourne-6min")[:7], source / "bom")
    settings = service_settings(tmp_path / "var", small_checkpoint)
    runner = MethodRunner(settings)
    replay = FolderReplay(source, settings.data_dir / "incoming", interval_s=0.0)
    assert len(replay.sequences) == 2  # FMI's two events are one site's sequence
    replay.backlog = pipeline_backlog(redis_conn)
    pipeline = Pipeline(settings, redis_conn, runner, replay)
    pipeline.start()
    try:
        pipeline.feed_thread.join(timeout=600)
        assert not pipeline.feed_thread.is_alive(), "replay did not finish"
    finally:
        pipeline.stop()

    assert replay.progress.delivered == 21
    assert replay.progress.held_s > 0, "an unthrottled replay would outrun the workers"
    counts = {k.decode(): int(v) for k, v in redis_conn.hgetall(keys.INFER_COUNTS).items()}
    assert counts.get("refused:behind", 0) == 0
    assert counts["refused:warming_up"] == 8  # the first 4 frames of each site, nothing later
    assert counts["refused:gap"] == 1  # the year between the two FMI events, once
    fmi_site = peek_site_id(_frames(source / "fmi-a")[0])
    fmi_times = [
        peek_valid_time(p) for p in [*_frames(source / "fmi-a"), *_frames(source / "fmi-b")]
    ]
    five_min = timedelta(minutes=5)
    expected = [
        t
        for i, t in enumerate(fmi_times)
        if i >= 4 and all(fmi_times[i - j] == t - j * five_min for j in range(1, 5))
    ]
    assert len(expected) == 2 + 4
    store = pipeline.inference.forecasts
    assert store.issue_times(fmi_site, "persistence") == expected
    status = {
        k.decode(): v.decode() for k, v in redis_conn.hgetall(keys.infer_status(fmi_site)).items()
    }
    assert status["refused_message"].startswith("after the gap (missing ")


def test_an_archive_replays_as_a_feed_of_frames_in_time_order(tmp_path, redis_conn):
    """Issue 31: a multi-time archive file is a feed of frames, one a tick."""
    from ingest.ingestor import Ingestor
    from ingest.worker import IngestWorker
    from tests.ingest.helpers import small_settings
    from tests.ingest.test_multitime import _rain_cube, write_archive

    settings = small_settings(tmp_path / "var")
    write_archive(tmp_path / "frames" / "net-z" / "run.nc", _rain_cube(6), [25, 0, 5, 10, 15, 20])
    (sequence,) = network_sequences(tmp_path / "frames")
    assert [d.step for d in sequence] == [1, 2, 3, 4, 5, 0]  # stored out of order: time order
    replay = FolderReplay(tmp_path / "frames", tmp_path / "incoming", interval_s=0.0)
    assert replay.n_frames == 6
    stop = threading.Event()
    replay.run(stop)
    delivered = sorted((tmp_path / "incoming").rglob("*.nc"))
    assert [p.name for p in delivered] == [
        f"run_20260101T00{m:02d}Z.nc" for m in (0, 5, 10, 15, 20, 25)
    ]
    worker = IngestWorker(Ingestor(settings, redis_conn), settings, settle_s=0.0)
    assert worker.run_folders([tmp_path / "incoming"], watch=False).by_outcome == {"accepted": 6}
    assert worker.ingestor.window.status("net-z").count == 6
