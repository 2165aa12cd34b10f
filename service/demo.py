"""``nowcast demo``: the main job on embedded defaults.

For now (ingest stage): fill the embedded Redis from a folder of frames (real ones when
``--frames`` is given, else a synthetic feed the project writes), then print every site's
window and the newest consecutive input frames. Later stages add inference and the API.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

log = logging.getLogger(__name__)

DEMO_SYNTH_FRAMES = 45


def _replay(worker: object, folders: list[Path], speed: float) -> None:
    """Ingest files one by one, sleeping cadence / speed between them (speed 0: no sleep)."""
    from ingest.worker import IngestWorker

    assert isinstance(worker, IngestWorker)
    previous = None
    for path in worker.new_files(folders):
        result = worker.ingest_file(path)
        if speed > 0 and result and result.valid_time and previous:
            time.sleep(max(0.0, (result.valid_time - previous).total_seconds() / speed))
        if result and result.valid_time:
            previous = result.valid_time


def demo(
    frames: Annotated[
        Path | None,
        typer.Option("--frames", help="Folder of real CF-NetCDF frames; default: synthetic feed."),
    ] = None,
    speed: Annotated[
        float,
        typer.Option("--speed", min=0, help="Replay speed-up (360: 6 min in 1 s; 0: at once)."),
    ] = 0.0,
) -> None:
    """Run the pipeline on embedded Redis and print the windows it built."""
    from ingest.cf_writer import write_synthetic_feed
    from ingest.conversion import grey_to_rain_rate_mmh
    from ingest.ingestor import Ingestor
    from ingest.redis_conn import open_redis
    from ingest.settings import get_settings
    from ingest.status import format_statuses, ingest_totals, site_statuses
    from ingest.window import WindowError
    from ingest.worker import IngestWorker

    settings = get_settings()
    if frames is None:
        frames = settings.data_dir / "demo-feed"
        if not any(frames.glob("*.nc")):
            paths = write_synthetic_feed(frames, DEMO_SYNTH_FRAMES, site_id="synth-01")
            typer.echo(f"no --frames given: wrote {len(paths)} synthetic frames to {frames}")
    with open_redis(settings) as connection:
        ingestor = Ingestor(settings, connection)
        worker = IngestWorker(ingestor, settings, settle_s=0.0)
        worker.install_signal_handlers()
        _replay(worker, [frames], speed)
        statuses = site_statuses(connection, settings)
        typer.echo(format_statuses(statuses, ingest_totals(connection)))
        for status in statuses:
            site = status.window.site_id
            try:
                inputs = ingestor.window.last_consecutive(site, 5, settings.site(site).cadence_min)
            except WindowError as exc:
                typer.echo(f"{site}: no model input yet: {exc}")
                continue
            typer.echo(f"{site}: the 5 newest consecutive frames (model input):")
            for frame in inputs:
                rain = grey_to_rain_rate_mmh(
                    frame.grey, settings.dbz_min, settings.dbz_max, settings.zr_a, settings.zr_b
                )
                typer.echo(
                    f"  {frame.valid_time:%Y-%m-%d %H:%M}Z  grey max {frame.grey.max():.2f}  "
                    f"rain >= 0.5 mm/h on {np.mean(rain >= 0.5):.0%} of cells, "
                    f"max {rain.max():.1f} mm/h  [{frame.norm_version}]"
                )
