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
