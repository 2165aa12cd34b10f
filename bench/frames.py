"""The input of the model benchmarks: one real event when ../shared is there, else synthetic."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

REAL_EVENT = Path(__file__).resolve().parents[1].parent / "shared/data/radar/bom-melbourne-6min"


def bench_event() -> Any:
    """The BOM Melbourne event (61 real frames) as a `model.data.events.Event`, normalised to
    grey; 20 synthetic 512 x 512 frames when the shared data is absent. ``.name`` says which."""
    from ingest.cf_writer import write_synthetic_feed
    from model.data.events import load_event
    from service.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        folder = REAL_EVENT
        if not folder.is_dir():
            folder = Path(tmp) / "synthetic"
            write_synthetic_feed(folder, 20, shape=(512, 512))
        return load_event(folder, Settings(), name=str(folder))
