"""Command-line verbs of the ingest stage; `service.cli` mounts them on ``nowcast``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ingest.settings import IngestSettings, get_ingest_settings

log = logging.getLogger(__name__)

SiteOpt = Annotated[
    str | None, typer.Option("--site", help="Site id to use instead of the file's attributes.")
]


def _settings() -> IngestSettings:
    try:
        return get_ingest_settings()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def ingest(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders of CF-NetCDF frames.", exists=True, file_okay=False),
    ] = None,
    watch: Annotated[
        bool, typer.Option(help="Keep watching for new files and pushed frames.")
    ] = False,
    rebuild: Annotated[
        bool, typer.Option(help="Rebuild every window from the raw archive (after Redis lost it).")
    ] = False,
    site: SiteOpt = None,
) -> None:
    """Ingest radar frames into the per-site rolling windows in Redis.

    Existing files are taken in valid-time order; with --watch the worker then takes new files
    and frames pushed on the incoming stream until SIGTERM/Ctrl-C. Bad frames go to quarantine.
    """
    from core.redis_conn import open_redis
    from core.worker import install_stop_signals
    from ingest.ingestor import Ingestor
    from ingest.rebuild import rebuild_windows
    from ingest.worker import IngestWorker

    settings = _settings()
    with open_redis(settings) as connection:
        ingestor = Ingestor(settings, connection)
        if rebuild:
            for report in rebuild_windows(ingestor, [site] if site else None):
                typer.echo(f"rebuilt {report.site_id}: {report.frames} frames")
        if folders or watch:
            worker = IngestWorker(ingestor, settings)
            install_stop_signals(worker.request_stop, settings.stop_timeout_s)
            tally = worker.run_folders(list(folders or []), watch=watch, site_id=site)
            typer.echo(f"ingested: {tally.by_outcome}")


def push(
    files: Annotated[
        list[Path],
        typer.Argument(help="NetCDF frames to hand to the workers.", exists=True, dir_okay=False),
    ],
    site: SiteOpt = None,
) -> None:
    """Push frames onto the incoming Redis stream for a running `nowcast ingest --watch`."""
    from core.redis_conn import open_redis
    from ingest.worker import push_frame

    settings = _settings()
    limit = settings.max_frame_bytes
    too_large = [p for p in files if p.stat().st_size > limit]
    if too_large:  # checked before reading: a huge file never reaches the stream
        raise typer.BadParameter(
            f"{', '.join(map(str, too_large))}: larger than the frame limit of {limit} bytes "
            "(NOWCAST_MAX_FRAME_BYTES)"
        )
    with open_redis(settings) as connection:
        for path in files:
            entry = push_frame(connection, path.read_bytes(), path.name, site, max_bytes=limit)
            typer.echo(f"{path}: {entry}")


def synth(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the frames into.")],
    frames: Annotated[int, typer.Option("--frames", min=1, max=100_000)] = 40,
    cadence_min: Annotated[float, typer.Option("--cadence-min", min=0.5)] = 6.0,
    site: Annotated[str, typer.Option("--site")] = "synth-01",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    quantity: Annotated[
        str, typer.Option("--quantity", help="rain_rate, reflectivity or accumulation.")
    ] = "rain_rate",
) -> None:
    """Write a synthetic CF-NetCDF radar feed: moving, growing and decaying rain."""
    from ingest.cf_writer import write_synthetic_feed

    paths = write_synthetic_feed(out_dir, frames, cadence_min, site, seed, quantity)
    typer.echo(f"wrote {len(paths)} frames to {out_dir} ({paths[0].name} .. {paths[-1].name})")


def normalize(
    file: Annotated[Path, typer.Argument(help="One CF-NetCDF radar frame.", exists=True)],
    out: Annotated[
        Path, typer.Option("--out", help="Output .npy (float32 grey, target x target).")
    ],
    site: SiteOpt = None,
    mask: Annotated[
        Path | None,
        typer.Option("--mask", help="Noise mask .npy to apply (bool, target x target)."),
    ] = None,
) -> None:
    """Normalise one frame to grey levels, exactly as ingest does, and save it as .npy."""
    from core.frame import FrameRejected
    from ingest.ingestor import norm_params_for
    from ingest.normalize import normalise_dbz
    from ingest.reader import read_radar_file

    settings = _settings()
    try:
        field = read_radar_file(file, site, (settings.zr_a, settings.zr_b))
    except FrameRejected as rejected:
        typer.echo(f"error: {file}: {rejected}", err=True)
        raise typer.Exit(2) from None
    noise = np.load(mask, allow_pickle=False).astype(bool) if mask else None
    grey, covered = normalise_dbz(field.dbz, norm_params_for(settings, field.site_id), noise)
    np.save(out, grey.astype(np.float32), allow_pickle=False)
    typer.echo(
        f"{file.name}: site {field.site_id}, {field.valid_time:%Y-%m-%dT%H:%M:%SZ}, "
        f"{field.quantity} -> {out} {grey.shape} grey {grey.min():.3f}..{grey.max():.3f}, "
        f"covered {covered:.0%}"
    )


def fit_mask(
    site: Annotated[str, typer.Argument(help="Site id.")],
    from_folders: Annotated[
        list[Path] | None, typer.Option("--from", help="Folders to learn from (default: archive).")
    ] = None,
    clusters: Annotated[int, typer.Option("--clusters", min=2, max=16)] = 3,
    min_frames: Annotated[int, typer.Option("--min-frames", min=1)] = 24,
) -> None:
    """Fit the K-Means noise mask from monthly pixel averages and make it current."""
    from core.redis_conn import open_redis
    from ingest.ingestor import Ingestor
    from ingest.mask_fit import fit_site_mask
    from ingest.noise_mask import MaskFitParams

    settings = _settings()
    with open_redis(settings) as connection:
        try:
            noise = fit_site_mask(
                Ingestor(settings, connection),
                site,
                from_folders,
                MaskFitParams(n_clusters=clusters),
                min_frames,
            )
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    typer.echo(
        f"site {site}: mask {noise.version}, {int(noise.mask.sum())} cells masked, "
        f"{noise.n_frames} frames over {len(noise.months)} month(s)"
    )


def status() -> None:
    """Print each site's window: frames, newest time, cadence, gaps, mask version."""
    from core.redis_conn import open_redis
    from ingest.status import format_statuses, ingest_totals, site_statuses

    settings = _settings()
    with open_redis(settings) as connection:
        typer.echo(format_statuses(site_statuses(connection, settings), ingest_totals(connection)))


def register(app: typer.Typer) -> None:
    """Mount the ingest verbs on the main application."""
    app.command()(ingest)
    app.command()(push)
    app.command()(synth)
    app.command()(normalize)
    app.command("fit-mask")(fit_mask)
    app.command()(status)
