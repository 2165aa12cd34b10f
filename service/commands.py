"""``nowcast infer`` and ``nowcast serve``: the inference worker and the HTTP API as processes."""

from __future__ import annotations

import logging
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
    from core.redis_conn import open_redis
    from core.worker import install_stop_signals
    from service.inference import InferenceWorker
    from service.methods_runner import MethodRunner
    from service.settings import get_inference_settings

    settings = get_inference_settings()
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
        install_stop_signals(worker.request_stop, settings.stop_timeout_s)
        worker.run()


def serve(
    host: Annotated[str | None, typer.Option("--host", help="Default: settings.")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535)] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="uvicorn worker processes.")
    ] = 1,
) -> None:
    """Serve the HTTP API, /metrics and the dashboard with uvicorn.

    With ``--workers N`` > 1 each process serves from the same Redis, and Prometheus metrics
    are aggregated across them (prometheus-client multiprocess mode, PROMETHEUS_MULTIPROC_DIR;
    a fresh temporary folder when unset).
    """
    import os
    import tempfile

    import uvicorn

    from core.redis_conn import embedded_url, open_redis
    from service.api.slow_clients import HeaderTimeoutProtocol
    from service.settings import get_settings

    settings = get_settings()
    bind_host, bind_port = host or settings.http_host, port or settings.http_port
    with open_redis(settings) as connection:
        if workers == 1:
            from service.api.app import create_app, freeze_startup_heap

            app = create_app(settings, connection)
            freeze_startup_heap()
            uvicorn.run(
                app,
                host=bind_host,
                port=bind_port,
                log_level="warning",
                http=HeaderTimeoutProtocol,
            )
            return
        if not settings.redis_url:
            os.environ["REDIS_URL"] = embedded_url(connection) or ""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="nowcast-metrics-")
        uvicorn.run(
            "service.api.app:app_from_environment",
            factory=True,
            workers=workers,
            host=bind_host,
            port=bind_port,
            log_level="warning",
            http=HeaderTimeoutProtocol,
        )


def register(app: typer.Typer) -> None:
    app.command("infer")(infer)
    app.command("serve")(serve)
