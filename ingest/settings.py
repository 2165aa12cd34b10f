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
from typing import Annotated, Literal

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
SUBSCRIBER_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
SECRET_MIN_CHARS = 16
_PLACEHOLDER_WORDS = ("change", "placeholder", "example", "secret", "password", "xxxx")


def _check_site_ids(site_ids: list[str], what: str) -> None:
    """ValueError naming the ids that do not match `SITE_ID_PATTERN`."""
    import re

    bad = [s for s in site_ids if not re.fullmatch(SITE_ID_PATTERN, s)]
    if bad:
        raise ValueError(f"{what} {bad} do not match {SITE_ID_PATTERN}")


class SiteConfig(BaseModel):
    """Per-site overrides; ``None`` means "use the global default" or "learn it"."""

    model_config = {"extra": "forbid", "frozen": True}

    crop_cells: int | None = Field(default=None, ge=8)
    target_cells: int | None = Field(default=None, ge=8)
    cadence_min: float | None = Field(default=None, gt=0)
    grid_shape: tuple[int, int] | None = None


class SubscriberConfig(BaseModel):
    """One receiver of published nowcasts (``NOWCAST_SUBSCRIBERS`` is a JSON list of these).

    ``kind`` names an entry of the registry `service.publish.subscribers` (``webhook``:
    ``url`` and ``secret``; ``file``: ``folder``); a field the kind does not use is refused.
    ``payload`` None takes the kind's default (webhook: summary, file: netcdf).
    """

    model_config = {"extra": "forbid", "frozen": True}

    name: str = Field(pattern=SUBSCRIBER_NAME_PATTERN, description="Unique; in keys and logs.")
    kind: str = Field(description="webhook or file (the registry lists them).")
    url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    folder: Path | None = None
    payload: Literal["summary", "netcdf"] | None = None
    secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key; never logged.")

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> SubscriberConfig:
        from service.publish.subscribers import get_kind  # the registry; imports no numpy

        kind = get_kind(self.kind)
        used = {"url": self.url, "folder": self.folder, "secret": self.secret}
        missing = [f for f in kind.needs if used[f] is None]
        unused = [f for f, v in used.items() if v is not None and f not in kind.needs]
        if missing or unused:
            raise ValueError(
                f"subscriber {self.name!r} of kind {self.kind!r} needs {list(kind.needs)}; "
                f"missing {missing}, not used by this kind {unused}"
            )
        if self.payload is not None and self.payload not in kind.payloads:
            raise ValueError(f"kind {self.kind!r} sends {list(kind.payloads)}, not {self.payload}")
        if self.secret is not None:
            value = self.secret.get_secret_value()
            if len(value) < SECRET_MIN_CHARS or any(w in value.lower() for w in _PLACEHOLDER_WORDS):
                raise ValueError(
                    f"subscriber {self.name!r}: the secret must be at least {SECRET_MIN_CHARS} "
                    "random characters, not a placeholder"
                )
        return self

    @property
    def payload_kind(self) -> str:
        """The payload sent: the configured one, else the kind's default."""
        from service.publish.subscribers import get_kind

        return self.payload or get_kind(self.kind).payloads[0]


class Settings(BaseSettings):
    """Everything the workers can be told. Paper values by default."""

    # errors name the setting and the rule, never echo the value: values hold secrets
    # (subscriber secrets and URLs with tokens, API keys)
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, hide_input_in_errors=True
    )

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
    redis_reconnect_max_s: Annotated[float, Field(gt=0, le=300)] = Field(
        default=5.0,
        description="Longest wait of a running worker between tries while Redis is away "
        "(doubling from poll_interval_s).",
    )
    events_stream_maxlen: Annotated[int, Field(ge=100)] = 100_000

    # inference and live verification
    checkpoint: Path | None = Field(
        default=None, description="ConvLSTM checkpoint; default: the one shipped in model/."
    )
    checkpoints: dict[str, Path] = Field(
        default_factory=dict,
        description="Checkpoint per learned method (convlstm, saconvlstm, fclstm); default: "
        "model/checkpoints/NAME.safetensors.",
    )
    methods: tuple[str, ...] = Field(
        default=("convlstm", "extrapolation", "sprog", "persistence"),
        description="Nowcast methods the inference worker runs for every issue time.",
    )
    infer_batch_max: Annotated[int, Field(ge=1, le=1024)] = 32
    infer_claim_idle_ms: Annotated[int, Field(ge=1000)] = 60_000
    infer_max_behind_min: float = Field(
        default=30.0,
        ge=0,
        description="An issue time older than the site's newest frame by more than this is "
        "skipped (reason 'behind'): a worker that fell behind catches up, newest first.",
    )
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

    # scheduled publishing (nowcast publish)
    publish_mode: Literal["cron", "on_forecast"] = Field(
        default="cron", description="cron: the latest nowcast per cycle; on_forecast: each one."
    )
    publish_cron: str = Field(
        default="*/6 * * * *", description="Cycle of the cron mode (UTC), radar cadence aligned."
    )
    publish_sites: tuple[str, ...] = Field(default=(), description="Sites published; () = all.")
    publish_method: str = Field(default="convlstm", description="The method whose nowcasts go.")
    subscribers: tuple[SubscriberConfig, ...] = Field(default=())
    publish_max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    publish_backoff_s: Annotated[float, Field(ge=0, le=600)] = 1.0
    publish_backoff_max_s: Annotated[float, Field(ge=0, le=3600)] = 60.0
    publish_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    publish_lock_ttl_s: Annotated[int, Field(ge=1, le=86_400)] = 120
    publish_claim_idle_ms: Annotated[int, Field(ge=100)] = 60_000
    publish_dead_letters_max: Annotated[int, Field(ge=10)] = 10_000
    public_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s?#]+$",
        description="Base of the links in published summaries; default http://host:port.",
    )

    @field_validator("sites")
    @classmethod
    def _site_ids_are_valid(cls, sites: dict[str, SiteConfig]) -> dict[str, SiteConfig]:
        _check_site_ids(list(sites), "site ids")
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

    @field_validator("publish_sites")
    @classmethod
    def _publish_sites_are_valid(cls, sites: tuple[str, ...]) -> tuple[str, ...]:
        _check_site_ids(list(sites), "publish_sites")
        return sites

    @field_validator("publish_cron")
    @classmethod
    def _cron_is_valid(cls, expression: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(expression):
            raise ValueError(f"publish_cron {expression!r} is not a cron expression")
        return expression

    @field_validator("subscribers")
    @classmethod
    def _subscriber_names_are_unique(
        cls, subscribers: tuple[SubscriberConfig, ...]
    ) -> tuple[SubscriberConfig, ...]:
        names = [s.name for s in subscribers]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"subscriber names must be unique; repeated: {repeated}")
        return subscribers

    @model_validator(mode="after")
    def _publishing_is_consistent(self) -> Settings:
        if self.publish_method not in self.methods:
            raise ValueError(
                f"publish_method {self.publish_method!r} is not among the methods the worker "
                f"runs {list(self.methods)}"
            )
        if self.publish_backoff_max_s < self.publish_backoff_s:
            raise ValueError("publish_backoff_max_s must not be below publish_backoff_s")
        # a lock must outlive one back-off and one attempt: connect, write and read may each
        # take up to publish_timeout_s
        attempt_s = 3 * self.publish_timeout_s + self.publish_backoff_max_s
        if self.publish_lock_ttl_s <= attempt_s:
            raise ValueError(
                f"publish_lock_ttl_s must exceed 3 x publish_timeout_s + publish_backoff_max_s "
                f"({attempt_s:g} s): a lock must outlive one back-off and one attempt"
            )
        return self

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

    @property
    def public_url(self) -> str:
        """Base URL of the API for links: ``public_base_url``, else http://host:port."""
        base = self.public_base_url or f"http://{self.http_host}:{self.http_port}"
        return base.rstrip("/")

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
