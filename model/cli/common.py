"""What the model stage's verbs share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from model.data.events import Event


def load_events(roots: list[Path]) -> list[Event]:
    """The events under ``roots`` (event folders or their parents), normalised; a usage error
    when there are none."""
    from ingest.settings import get_ingest_settings
    from model.data.events import load_events as load_named_events

    events = load_named_events(roots, get_ingest_settings())
    if not events:
        raise typer.BadParameter(f"no frames under {[str(r) for r in roots]}")
    return events


def load_views_or_events(roots: list[Path], crops: bool) -> list[Event]:
    """`load_events`, or with ``crops`` every view of each event (`model.data.views`: the
    centre crop and the 330 x 330 crops of a large grid, each an event named
    "<event>@r<row>c<col>"); a usage error when there are none."""
    if not crops:
        return load_events(roots)
    from ingest.settings import get_ingest_settings
    from model.data.views import load_all_views

    try:
        return load_all_views(roots, get_ingest_settings(), extra_crops=True)[1]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
