"""``nowcast demo``: the whole service on one machine, on embedded defaults.

A radar feed (real frames replayed from ``--frames``, each site's events in time order and
never faster than the pipeline forecasts them; else the project's synthetic radar) delivers
files into an incoming folder; the ingest worker takes them into the embedded Redis;
the inference worker makes the ConvLSTM, extrapolation and persistence nowcasts with the
shipped checkpoint and verifies them as observations arrive; the API serves forecasts,
verification, /metrics and the dashboard at http://HOST:PORT/. Ctrl-C stops everything.
The demo keeps its state under ``<data_dir>/demo`` and starts from an empty embedded Redis;
it first takes ``<data_dir>/demo.lock`` and checks its port (`service.demo_guard`), so a second
demo fails at once, naming the first, and changes nothing.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import redis
    import uvicorn
    from fastapi import FastAPI

    from service.feeds import FolderReplay, SyntheticRadar
    from service.methods_runner import MethodRunner
    from service.settings import Settings

log = logging.getLogger(__name__)

RADAR_CADENCE_S = 360.0
STOP_TIMEOUT_S = 5.0
"""How long a stopping demo lets its workers finish the item in hand: a batch still running
then is left (its frame events are redone at the next start; the demo starts empty anyway)."""


def demo(
    frames: Annotated[
        Path | None,
        typer.Option(
            "--frames",
            help="Folder of real CF-NetCDF frames (one sub-folder per network or site); "
            "default: the synthetic radar feed.",
        ),
    ] = None,
    speed: Annotated[
        float,
        typer.Option("--speed", min=1, help="Replay speed-up: 60 delivers a 6-min frame in 6 s."),
    ] = 60.0,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
) -> None:
    """Run feed, ingest, inference, live verification, API and dashboard until Ctrl-C."""

    from core.redis_conn import open_redis
    from service.api.app import create_app
    from service.demo_guard import DemoRefused, claim, release
    from service.feeds import FolderReplay, SyntheticRadar
    from service.methods_runner import MethodRunner
    from service.settings import get_settings

    base = get_settings()
    settings = base.model_copy(update={"data_dir": base.data_dir / "demo"})
    incoming = settings.data_dir / "incoming"
    interval_s = RADAR_CADENCE_S / speed
    replay: FolderReplay | None = None
    try:  # nothing is touched before the frames, the state folder and the port are checked
        if frames is not None:
            replay = FolderReplay(_frames_folder(frames), incoming, interval_s)
        lock = claim(base.data_dir, host, port)
    except (DemoRefused, ValueError) as refused:
        typer.echo(f"nowcast demo: {refused}", err=True)
        raise typer.Exit(2) from None
    if settings.redis_url is None:  # our own embedded server: start from a clean slate
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    incoming.mkdir(parents=True, exist_ok=True)
    feed: FolderReplay | SyntheticRadar = replay or SyntheticRadar(incoming, interval_s)
    source = (
        f"{replay.n_frames} real frames from {frames} ({len(replay.sequences)} sites)"
        if replay is not None
        else "the synthetic radar feed (no --frames given)"
    )
    typer.echo("loading the nowcast methods ...")
    runner = MethodRunner(settings)

    with open_redis(settings) as connection:
        feed.backlog = pipeline_backlog(connection)  # never feed faster than it forecasts
        pipeline = Pipeline(settings, connection, runner, feed)
        server = _server(create_app(settings, connection), host, port)
        typer.echo(
            f"feeding {source}, one frame every {interval_s:g} s\n"
            f"dashboard: http://{host}:{port}/   API docs: http://{host}:{port}/docs\n"
            f"models: {', '.join(runner.versions.values())} on {runner.device}\n"
            "press Ctrl-C to stop"
        )
        pipeline.start()
        # uvicorn handles Ctrl-C and SIGTERM while it serves, then raises the signal again
        # once it has shut down: both become KeyboardInterrupt, the normal stop below, so a
        # container runtime's or systemd's SIGTERM also stops the workers and the embedded
        # Redis (a second signal during that stop ends it cold, still through the finally)
        signal.signal(signal.SIGTERM, _stop_as_ctrl_c)
        # a closed terminal (SIGHUP) stops the demo as Ctrl-C does: server, workers, Redis
        signal.signal(signal.SIGHUP, lambda _signum, _frame: setattr(server, "should_exit", True))
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            try:
                pipeline.stop(min(settings.stop_timeout_s, STOP_TIMEOUT_S))
            except KeyboardInterrupt:  # a second signal: no more waiting
                log.warning("second signal: stopping now")
    release(lock)
    typer.echo("demo stopped")


class Pipeline:
    """Feed, ingest worker and inference worker, each in its own thread, on one Redis."""

    def __init__(
        self,
        settings: Settings,
        connection: redis.Redis,
        runner: MethodRunner,
        feed: FolderReplay | SyntheticRadar,
    ) -> None:
        from ingest.ingestor import Ingestor
        from ingest.worker import IngestWorker
        from service.inference import InferenceWorker

        self.incoming = settings.data_dir / "incoming"
        self.ingest = IngestWorker(Ingestor(settings, connection), settings, settle_s=0.0)
        self.inference = InferenceWorker(settings, connection, runner)
        self.inference.interrupt_on_stop = True  # Ctrl-C stops the demo within seconds
        self._stop = threading.Event()
        self.feed_thread = threading.Thread(
            target=feed.run, args=(self._stop,), name="feed", daemon=True
        )
        self._threads = [
            self.feed_thread,
            threading.Thread(
                target=self.ingest.run_folders,
                args=([self.incoming], True),
                name="ingest",
                daemon=True,
            ),
            threading.Thread(target=self.inference.run, name="inference", daemon=True),
        ]

    def start(self) -> None:
        self.incoming.mkdir(parents=True, exist_ok=True)
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the feed, let each worker finish its current item; wait ``timeout_s`` in all."""
        self._stop.set()
        self.ingest.request_stop()
        self.inference.request_stop()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        left = [t.name for t in self._threads if t.is_alive()]
        if left:
            log.warning(
                "%s still busy after %.0f s: ended with the process; the frames in hand are "
                "redone at the next start",
                ", ".join(left),
                timeout_s,
            )


def _server(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    """The demo's uvicorn server: quiet, no access log."""
    import uvicorn

    from service.api.slow_clients import HeaderTimeoutProtocol

    return uvicorn.Server(
        uvicorn.Config(
            app,
            http=HeaderTimeoutProtocol,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,  # open dashboards must not hold the stop
        )
    )


def _stop_as_ctrl_c(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def pipeline_backlog(connection: redis.Redis) -> Callable[[int], int]:
    """``backlog(delivered)``: frames delivered so far and not yet ingested and forecast.

    Frames the ingest has not taken (its outcome counts, from this moment on) plus frame
    events the inference workers have not handled.
    """
    from core import keys
    from core.streams import group_backlog

    def ingested() -> int:
        return sum(int(v) for v in connection.hvals(keys.COUNTS))

    before = ingested()

    def backlog(delivered: int) -> int:
        events, _oldest = group_backlog(connection, keys.EVENTS_STREAM, keys.INFER_GROUP)
        return max(0, delivered - (ingested() - before)) + events

    return backlog


def _frames_folder(frames: Path) -> Path:
    """``frames`` if it is a folder; ValueError saying what to give otherwise."""
    if not frames.is_dir():
        raise ValueError(f"--frames {frames}: no such folder; give a folder of radar frames")
    return frames
