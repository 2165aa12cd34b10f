"""Status of every site's window, as operators read it (``nowcast status``)."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from core import keys
from core.georef import GridGeoref
from ingest.settings import IngestSettings
from ingest.window import WindowStatus, WindowStore


@dataclass(frozen=True)
class SiteStatus:
    window: WindowStatus
    mask_version: str | None  # None: no mask fitted, frames are ingested unmasked
    norm_version: str | None
    counts: dict[str, int]


def site_statuses(connection: redis.Redis, settings: IngestSettings) -> list[SiteStatus]:
    store = WindowStore.from_settings(connection, settings)
    out = []
    for site_id in store.sites():
        meta = {
            k.decode(): v.decode() for k, v in connection.hgetall(keys.site_meta(site_id)).items()
        }
        mask = connection.hget(keys.noise_mask(site_id), "version")
        counts = connection.hgetall(keys.site_counts(site_id))
        out.append(
            SiteStatus(
                window=store.status(site_id, settings.site(site_id).cadence_min),
                mask_version=mask.decode() if mask else None,
                norm_version=meta.get("norm_version"),
                counts={k.decode(): int(v) for k, v in counts.items()},
            )
        )
    return out


def format_statuses(statuses: list[SiteStatus], totals: dict[str, int]) -> str:
    """A plain-text table, one line per site, then totals and gap details."""
    if not statuses:
        return "no site has a window yet"
    lines = [f"{'site':<22}{'frames':>7}  {'newest (UTC)':<18}{'cadence':>9}{'gaps':>6}  mask"]
    for s in statuses:
        w = s.window
        newest = w.newest.strftime("%Y-%m-%d %H:%M") if w.newest else "-"
        cadence = f"{w.cadence_min:g} min" if w.cadence_min else "-"
        mask = s.mask_version or "none (unmasked)"
        lines.append(
            f"{w.site_id:<22}{w.count:>7}  {newest:<18}{cadence:>9}{w.missing_count:>6}  {mask}"
        )
    for s in statuses:
        if s.window.missing:
            shown = ", ".join(t.strftime("%Y-%m-%dT%H:%MZ") for t in s.window.missing[-6:])
            more = " ..." if s.window.missing_count > 6 else ""
            lines.append(f"  {s.window.site_id} missing: {shown}{more}")
    lines.append("totals: " + ", ".join(f"{k}={v}" for k, v in sorted(totals.items())))
    return "\n".join(lines)


def ingest_totals(connection: redis.Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in connection.hgetall(keys.COUNTS).items()}


def site_georef(connection: redis.Redis, site_id: str) -> GridGeoref | None:
    """Where the site's normalised grid lies, as the ingest recorded it; None if unknown."""
    text = connection.hget(keys.site_meta(site_id), "georef")
    return GridGeoref.from_json(text) if text else None
