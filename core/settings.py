"""The settings base every deployable shares, read from the environment (pydantic-settings).

Environment variables carry the prefix ``NOWCAST_`` (``NOWCAST_DATA_DIR``,
``NOWCAST_WINDOW_FRAMES`` ...), except ``REDIS_URL``. Per-site overrides come as JSON in
``NOWCAST_SITES``, e.g. ``{"melb-2": {"crop_cells": 300, "cadence_min": 6}}``.

Layers: `CoreSettings` here (Redis, data folder, the method's normalisation, windows, worker
loop, where the API is); `ingest.settings.IngestSettings` adds the ingest's; the service adds
inference, API and publishing settings, and its `service.settings.Settings` (all of them, for
the all-in-one demo and the API) refuses an unknown ``NOWCAST_*`` variable, so that a
misspelled setting is never ignored (`unknown_env_settings`).
"""

from __future__ import annotations

import os
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


def check_site_ids(site_ids: list[str], what: str) -> None:
    """ValueError naming the ids that do not match `SITE_ID_PATTERN`."""
    import re

    bad = [s for s in site_ids if not re.fullmatch(SITE_ID_PATTERN, s)]
    if bad:
        raise ValueError(f"{what} {bad} do not match {SITE_ID_PATTERN}")


class SiteConfig(BaseModel):
    """Per-site overrides; ``None`` means "use the global default" or "learn it"."""

    model_config = {"extra": "forbid", "frozen": True}

    crop_cells: int | None = Field(
        default=None, ge=8, description="This site's crop side in cells; None: crop_cells."
    )
    target_cells: int | None = Field(
        default=None, ge=8, description="This site's normalised frame side; None: target_cells."
    )
    cadence_min: float | None = Field(
        default=None,
        gt=0,
        description="This site's frame cadence in minutes; None: inferred from its window.",
    )
    cell_km: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="This site's grid cell size in km; set, the frame is brought to the "
        "network's input by cell size, not by cell count: the crop and the disk filter keep "
        "the paper's extent in km (crop_cells and disk_radius_cells at 1 km cells), and a grid "
        "smaller than that crop is padded as outside coverage (e.g. 3.75 for TAASRAD19's "
        "64 x 64 cells). None: by cell count, the paper's way.",
    )
    no_echo_dbz: float | None = Field(
        default=None,
        ge=-100,
        le=80,
        description="Reflectivity at or below this is no echo (grey 0): an archive's code "
        "for it (0 for TAASRAD19). None: every value is read as measured.",
    )
    grid_shape: tuple[int, int] | None = Field(
        default=None,
        description="The grid (rows, cols) every frame of the site must have; None: the grid "
        "of its first frame.",
    )
    default_method: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9-]{0,63}$",
        description="The nowcast method this site's forecast requests get without method=; "
        "None: convlstm. One the worker runs (NOWCAST_METHODS). For a feed at a cadence the "
        "learned models were not trained at (5 to 10 minutes), e.g. a 15-minute composite, "
        "sprog verifies better (the model card's independent check).",
    )


class SubscriberConfig(BaseModel):
    """One receiver of published nowcasts (``NOWCAST_SUBSCRIBERS`` is a JSON list of these).

    ``kind`` names an entry of the publisher's registry (``webhook``: ``url`` and ``secret``;
    ``file``: ``folder``); the publishing settings check that the fields fit the kind
    (`service.settings.PublishSettings`). ``payload`` None takes the kind's default.
    """

    model_config = {"extra": "forbid", "frozen": True}

    name: str = Field(pattern=SUBSCRIBER_NAME_PATTERN, description="Unique; in keys and logs.")
    kind: str = Field(description="webhook or file (the registry lists them).")
    url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="webhook: the URL posted to; it may carry a token, so it is never logged.",
    )
    folder: Path | None = Field(
        default=None, description="file: the folder written to, a subfolder per site."
    )
    payload: Literal["summary", "netcdf"] | None = Field(
        default=None,
        description="JSON summary or CF-NetCDF; None: the kind's default (webhook: summary, "
        "file: netcdf).",
    )
    secret: SecretStr | None = Field(
        default=None,
        description="webhook: Standard Webhooks secret, whsec_ + base64 of 24-64 random bytes "
        "(nowcast publish --new-secret); never logged.",
    )
    method: str | None = Field(
        default=None,
        description="The method whose nowcasts this subscriber gets; None: publish_method. A "
        "probabilistic method (steps) adds the areas of each probability level to summaries.",
    )


class CoreSettings(BaseSettings):
    """What every deployable needs: Redis, the data folder, the method's normalisation, the
    rolling windows, the worker loop and where the API is. Paper values by default."""

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

    window_frames: Annotated[int, Field(ge=20, le=1000)] = Field(
        default=40,
        description="Frames kept in each site's rolling window in Redis, the newest by valid "
        "time; a frame older than a full window is archived only.",
    )
    window_max_span_min: Annotated[float, Field(ge=60, le=30 * 1440)] = Field(
        default=7 * 1440.0,
        description="A frame older than the site's newest by more than this many minutes is "
        "archived only, never windowed: a stray date (a frame of 1970) cannot enter a "
        "running site's window.",
    )
    dbz_min: float = Field(
        default=-10.0,
        description="Reflectivity (dBZ) at grey 0: grey = (dBZ - dbz_min) / (dbz_max - dbz_min), "
        "clipped to [0, 1].",
    )
    dbz_max: float = Field(
        default=70.0, description="Reflectivity (dBZ) at grey 1; must exceed dbz_min."
    )
    zr_a: Annotated[float, Field(gt=0)] = Field(
        default=200.0,
        description="a of the Z-R relation Z = a R^b between rain rate and reflectivity "
        "(Marshall-Palmer).",
    )
    zr_b: Annotated[float, Field(gt=0)] = Field(
        default=1.6, description="b of the Z-R relation Z = a R^b (Marshall-Palmer)."
    )
    crop_cells: Annotated[int, Field(ge=8)] = Field(
        default=330,
        description="Side of the centre crop of the radar grid, in cells, that is filtered and "
        "resized into a frame; per site: sites.",
    )
    target_cells: Annotated[int, Field(ge=8)] = Field(
        default=100,
        description="Side of the normalised frame the crop is resized to, in cells; must not "
        "exceed crop_cells; per site: sites.",
    )
    disk_radius_cells: Annotated[int, Field(ge=0, le=64)] = Field(
        default=10,
        description="Radius in radar-grid cells of the disk filter applied to the crop before "
        "resizing; 0: no filter.",
    )
    sites: dict[str, SiteConfig] = Field(
        default_factory=dict,
        description="Per-site overrides, JSON: site id -> SiteConfig, e.g. "
        '{"melb-2": {"crop_cells": 300, "cadence_min": 6}}.',
    )

    poll_interval_s: Annotated[float, Field(gt=0, le=60)] = Field(
        default=0.25,
        description="How long a worker blocks on Redis waiting for work in one pass of its "
        "loop; also its first wait after losing Redis.",
    )
    stop_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=30.0,
        description="After the first SIGTERM or SIGINT, how long a process may finish the work "
        "in hand before it is stopped cold.",
    )
    redis_connect_tries: Annotated[int, Field(ge=1, le=100)] = Field(
        default=5,
        description="Attempts to reach the Redis of REDIS_URL at start-up before giving up.",
    )
    redis_connect_backoff_s: Annotated[float, Field(ge=0)] = Field(
        default=0.5,
        description="Wait after the first failed start-up attempt to reach Redis; doubled "
        "after each further one.",
    )
    redis_reconnect_max_s: Annotated[float, Field(gt=0, le=300)] = Field(
        default=5.0,
        description="Longest wait of a running worker between tries while Redis is away "
        "(doubling from poll_interval_s).",
    )
    events_stream_maxlen: Annotated[int, Field(ge=100)] = Field(
        default=100_000,
        description="Approximate length the frame events stream (nowcast:events:frames) is "
        "trimmed to.",
    )
    forecast_ttl_s: Annotated[int, Field(ge=60)] = Field(
        default=6 * 3600,
        description="How long a stored forecast is kept in Redis (served, published), seconds.",
    )
    verification_ttl_s: Annotated[int, Field(ge=3600)] = Field(
        default=90 * 24 * 3600,
        description="How long the hourly verification buckets are kept in Redis, seconds.",
    )

    http_host: str = Field(
        default="127.0.0.1",
        description="Address nowcast serve and the inference worker's --metrics-port bind to.",
    )
    http_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=8000,
        description="Port of nowcast serve (--port overrides it) and of nowcast health api.",
    )
    public_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s?#]+$",
        description="Base of the links in published summaries; default http://host:port.",
    )
    product_institution: str = Field(
        default="nowcast precipitation nowcasting service",
        min_length=1,
        max_length=200,
        description="Who issues the forecasts: institution, creator and publisher in the "
        "NetCDF products' metadata (CF, ACDD).",
    )
    product_contact_email: str | None = Field(
        default=None,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="Contact e-mail in the NetCDF products (ACDD creator_email and "
        "publisher_email); None leaves them out.",
    )
    product_license: str = Field(
        default="Use at your own risk; the radar data keep their providers' licences.",
        min_length=1,
        max_length=500,
        description="Licence statement of the NetCDF products (ACDD license).",
    )

    @field_validator("sites")
    @classmethod
    def _site_ids_are_valid(cls, sites: dict[str, SiteConfig]) -> dict[str, SiteConfig]:
        check_site_ids(list(sites), "site ids")
        return sites

    @model_validator(mode="after")
    def _bounds_are_ordered(self) -> CoreSettings:
        if self.dbz_max <= self.dbz_min:
            raise ValueError(f"dbz_max ({self.dbz_max}) must exceed dbz_min ({self.dbz_min})")
        if self.target_cells > self.crop_cells:
            raise ValueError("target_cells must not exceed crop_cells")
        return self

    @property
    def masks_path(self) -> Path:
        return self.data_dir / "masks"

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


def env_names(settings_class: type[BaseSettings]) -> set[str]:
    """The environment variables ``settings_class`` reads."""
    names = {ENV_PREFIX + name.upper() for name in settings_class.model_fields}
    return names | {f"{ENV_PREFIX}REDIS_URL"}


def unknown_env_settings(
    settings_class: type[BaseSettings], environ: dict[str, str] | None = None
) -> list[str]:
    """Names of ``NOWCAST_*`` environment variables that match no field of ``settings_class``."""
    environ = dict(os.environ) if environ is None else environ
    known = env_names(settings_class)
    return sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)
