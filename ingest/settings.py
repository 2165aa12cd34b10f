"""The project's settings: one pydantic-settings object, read from the environment.

Environment variables carry the prefix ``NOWCAST_`` (``NOWCAST_DATA_DIR``,
``NOWCAST_WINDOW_FRAMES`` ...), except ``REDIS_URL``. Per-site overrides come as JSON in
``NOWCAST_SITES``, e.g. ``{"melb-2": {"crop_cells": 300, "cadence_min": 6}}``.
An unknown ``NOWCAST_*`` variable is an error, so that a misspelled setting is never ignored.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "NOWCAST_"
SITE_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class SiteConfig(BaseModel):
    """Per-site overrides; ``None`` means "use the global default" or "learn it"."""

    model_config = {"extra": "forbid", "frozen": True}

    crop_cells: int | None = Field(default=None, ge=8)
    target_cells: int | None = Field(default=None, ge=8)
    cadence_min: float | None = Field(default=None, gt=0)
    grid_shape: tuple[int, int] | None = None


class Settings(BaseSettings):
    """Everything the workers can be told. Paper values by default."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "NOWCAST_REDIS_URL"),
        description="Redis DSN; unset starts the embedded Redis server under data_dir.",
    )
    data_dir: Path = Field(default=Path("var"), description="Root of archive, quarantine, masks.")
    archive_dir: Path | None = Field(default=None, description="Default: data_dir/archive.")
    quarantine_dir: Path | None = Field(default=None, description="Default: data_dir/quarantine.")

    window_frames: Annotated[int, Field(ge=20, le=1000)] = 40
    dbz_min: float = -10.0
    dbz_max: float = 70.0
    zr_a: Annotated[float, Field(gt=0)] = 200.0
    zr_b: Annotated[float, Field(gt=0)] = 1.6
    crop_cells: Annotated[int, Field(ge=8)] = 330
    target_cells: Annotated[int, Field(ge=8)] = 100
    disk_radius_cells: Annotated[int, Field(ge=0, le=64)] = 10
    max_future_min: Annotated[float, Field(ge=0)] = 15.0
    max_frame_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024 * 1024
    sites: dict[str, SiteConfig] = Field(default_factory=dict)

    poll_interval_s: Annotated[float, Field(gt=0, le=60)] = 0.25
    stop_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    redis_connect_tries: Annotated[int, Field(ge=1, le=100)] = 5
    redis_connect_backoff_s: Annotated[float, Field(ge=0)] = 0.5
    events_stream_maxlen: Annotated[int, Field(ge=100)] = 100_000

    # inference and live verification
    checkpoint: Path | None = Field(
        default=None, description="ConvLSTM checkpoint; default: the one shipped in model/."
    )
    methods: tuple[str, ...] = Field(
        default=("convlstm", "extrapolation", "persistence"),
        description="Nowcast methods the inference worker runs for every issue time.",
    )
    infer_batch_max: Annotated[int, Field(ge=1, le=1024)] = 32
    infer_claim_idle_ms: Annotated[int, Field(ge=1000)] = 60_000
    infer_device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    infer_bf16: bool = False
    forecast_ttl_s: Annotated[int, Field(ge=60)] = 6 * 3600
    verification_ttl_s: Annotated[int, Field(ge=3600)] = 90 * 24 * 3600

    # HTTP API
    api_keys: tuple[SecretStr, ...] = Field(
        default=(), description="Keys accepted on write routes (X-API-Key); none: writes refused."
    )
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    ready_max_ingest_age_s: Annotated[float, Field(gt=0)] = 3600.0

    @field_validator("sites")
    @classmethod
    def _site_ids_are_valid(cls, sites: dict[str, SiteConfig]) -> dict[str, SiteConfig]:
        import re

        bad = [s for s in sites if not re.fullmatch(SITE_ID_PATTERN, s)]
        if bad:
            raise ValueError(f"site ids {bad} do not match {SITE_ID_PATTERN}")
        return sites

    @field_validator("methods")
    @classmethod
    def _methods_are_known(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        from model.methods import method_names  # the registry; imports neither torch nor pysteps

        unknown = [m for m in methods if m not in method_names()]
        if unknown or not methods:
            raise ValueError(
                f"methods {list(methods)}: unknown {unknown}; valid: {list(method_names())}"
            )
        return methods

    @model_validator(mode="after")
    def _bounds_are_ordered(self) -> Settings:
        if self.dbz_max <= self.dbz_min:
            raise ValueError(f"dbz_max ({self.dbz_max}) must exceed dbz_min ({self.dbz_min})")
        if self.target_cells > self.crop_cells:
            raise ValueError("target_cells must not exceed crop_cells")
        return self

    @property
    def archive_path(self) -> Path:
        return self.archive_dir or self.data_dir / "archive"

    @property
    def quarantine_path(self) -> Path:
        return self.quarantine_dir or self.data_dir / "quarantine"

    @property
    def masks_path(self) -> Path:
        return self.data_dir / "masks"

    @property
    def spool_path(self) -> Path:
        return self.data_dir / "spool"

    @property
    def redis_data_path(self) -> Path:
        return self.data_dir / "redis"

    def site(self, site_id: str) -> SiteConfig:
        return self.sites.get(site_id, SiteConfig())


def unknown_env_settings(environ: dict[str, str] | None = None) -> list[str]:
    """Names of ``NOWCAST_*`` environment variables that match no setting."""
    environ = dict(os.environ) if environ is None else environ
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    known.add(f"{ENV_PREFIX}REDIS_URL")
    return sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` or pass their own."""
    unknown = unknown_env_settings()
    if unknown:
        raise ValueError(f"unknown settings in the environment (misspelled?): {unknown}")
    return Settings()
