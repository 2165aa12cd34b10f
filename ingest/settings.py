"""The ingest's settings: where raw frames are archived and quarantined, and what a frame
may be (`core.settings.CoreSettings` plus these)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field

from core.settings import CoreSettings


class IngestSettings(CoreSettings):
    """The ingest worker's settings (also the API's, which ingests uploaded frames)."""

    archive_dir: Path | None = Field(default=None, description="Default: data_dir/archive.")
    quarantine_dir: Path | None = Field(default=None, description="Default: data_dir/quarantine.")
    max_future_min: Annotated[float, Field(ge=0)] = Field(
        default=15.0,
        description="A frame valid more than this many minutes ahead of the clock is "
        "quarantined (future_time).",
    )
    max_age_min: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="For a live feed: a frame valid more than this many minutes before the "
        "clock is quarantined (past_time). None (the default) takes frames of any age, as "
        "replays and archives need; a site's window is bounded by window_max_span_min "
        "either way.",
    )
    max_frame_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=64 * 1024 * 1024,
        description="Largest raw frame accepted, in bytes, from a file, the stream or an "
        "upload (larger: too_large, HTTP 413).",
    )

    quarantine_max_bytes: Annotated[int, Field(ge=1024 * 1024)] = Field(
        default=2 * 1024**3,
        description="The most the quarantine folder holds, in bytes: beyond it a refused "
        "frame's note (reason, size, SHA-256) is written but not its bytes.",
    )

    @property
    def archive_path(self) -> Path:
        return self.archive_dir or self.data_dir / "archive"

    @property
    def quarantine_path(self) -> Path:
        return self.quarantine_dir or self.data_dir / "quarantine"


@lru_cache
def get_ingest_settings() -> IngestSettings:
    """The ingest's settings from the environment (the CLI checks for unknown variables)."""
    return IngestSettings()
