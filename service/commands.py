"""``nowcast infer`` and ``nowcast serve``: the inference worker and the HTTP API as processes."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Annotated

import typer

log = logging.getLogger(__name__)


def infer(
    once: Annotated[
        bool, typer.Option("--once", help="Handle the events waiting now, then exit.")
    ] = False,
    metrics_port: Annotated[
        int, typer.Option("--metrics-port", min=0, max=65535, help="Expose /metrics (0: no).")
    ] = 0,
) -> None:
    """Run the inference worker: forecasts and live verification from the frames stream."""
    from ingest.redis_conn import open_redis
    from ingest.settings import get_settings
    from service.inference import InferenceWorker
    from service.methods_runner import MethodRunner

    settings = get_settings()
    runner = MethodRunner(settings)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=settings.http_host)
    with open_redis(settings) as connection:
        worker = InferenceWorker(settings, connection, runner)
        if once:
            handled = worker.process_once()
            typer.echo(f"handled {handled} frame events")
            return

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: finishing the current batch, then stopping", signum)
            worker.request_stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        worker.run()


def serve(
    host: Annotated[str | None, typer.Option("--host", help="Default: settings.")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535)] = None,
) -> None:
    """Serve the HTTP API, /metrics and the dashboard with uvicorn."""
    import uvicorn

    from ingest.redis_conn import open_redis
    from ingest.settings import get_settings
    from service.api.app import create_app

    settings = get_settings()
    with open_redis(settings) as connection:
        app = create_app(settings, connection)
        uvicorn.run(
            app,
            host=host or settings.http_host,
            port=port or settings.http_port,
            log_level="warning",
            access_log=False,
        )


def register(app: typer.Typer) -> None:
    app.command("infer")(infer)
    app.command("serve")(serve)
