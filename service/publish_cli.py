"""``nowcast publish``: the publisher as a process (cron or on each new forecast), or a replay."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from service.publish.scheduler import Publisher

log = logging.getLogger(__name__)


class Mode(StrEnum):
    cron = "cron"
    on_forecast = "on_forecast"


def publish(
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="cron: one cycle now; on_forecast: the waiting events. Then exit."
        ),
    ] = False,
    replay: Annotated[
        bool,
        typer.Option("--replay", help="Try every dead letter again, report, exit (1: some left)."),
    ] = False,
    mode: Annotated[
        Mode | None, typer.Option("--mode", help="Default: NOWCAST_PUBLISH_MODE.")
    ] = None,
    new_secret: Annotated[
        bool,
        typer.Option(
            "--new-secret",
            help="Print a fresh webhook secret (Standard Webhooks: whsec_ + base64 of 32 random "
            "bytes) for a subscriber's `secret` and its receiver, then exit.",
        ),
    ] = False,
) -> None:
    """Post the latest nowcasts to every subscriber (webhooks, folders), exactly once each.

    SIGTERM or SIGINT: the request in flight is finished, then the publisher stops (a delivery
    not yet done stays for the next run); a second signal stops at once.
    """
    if new_secret:
        from service.publish.signing import new_secret as make_secret

        typer.echo(make_secret())
        return
    from core.redis_conn import open_redis
    from service.publish.scheduler import Publisher
    from service.publish.subscribers import build_subscribers
    from service.settings import get_settings

    settings = get_settings()
    if not settings.subscribers:
        raise typer.BadParameter("no subscribers configured (set NOWCAST_SUBSCRIBERS)")
    with open_redis(settings) as connection:
        publisher = Publisher(settings, connection, build_subscribers(settings, time.time))
        try:
            _run(publisher, once, replay, mode.value if mode else settings.publish_mode)
        finally:
            publisher.close()


def _run(publisher: Publisher, once: bool, replay: bool, mode: str) -> None:
    from core.worker import install_stop_signals

    install_stop_signals(publisher.request_stop, publisher.settings.stop_timeout_s)
    if replay:
        report = publisher.replay()
        left = publisher.state.dead_letter_count()
        typer.echo(f"replayed: {_words(report)}; dead letters left: {left}")
        if left:
            raise typer.Exit(1)
        return
    if not once:
        publisher.run_mode(mode)
        return
    if mode == "cron":
        cycle = publisher.cycle_at_or_before(publisher.now())
        report = _tally(publisher.run_cycle(cycle))
        typer.echo(f"cycle {cycle:%Y-%m-%dT%H:%MZ}: {_words(report)}")
        return
    acked = total = publisher.process_stream_once()
    while acked:
        acked = publisher.process_stream_once()
        total += acked
    typer.echo(f"handled {total} forecast events")


def _tally(report: Mapping[str, Mapping[str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcomes in report.values():
        for outcome in outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _words(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "nothing"


def register(app: typer.Typer) -> None:
    app.command("publish")(publish)
