"""Ingest of one raw frame: validate, normalise, archive, then insert into the window.

Order matters for "nothing is lost": a frame is parsed and checked first (a bad one goes to
quarantine with its reason), then its raw bytes are archived, and only then does it enter the
window. When the archive cannot be written the frame is refused with `ArchiveUnavailable` and
must not be acknowledged by the caller, so that it is tried again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis

from core import keys
from core.frame import Frame, FrameRejected, RadarField, RejectReason
from core.georef import GridGeoref
from ingest.archive import Archive, ArchiveOutcome
from ingest.mask_store import MaskStore
from ingest.native import NativeFrame, NativeStore, native_rain_mmh
from ingest.normalize import PAPER_CELL_KM, NormParams, normalise_dbz, target_georef
from ingest.quarantine import Quarantine
from ingest.reader import read_radar_bytes
from ingest.settings import IngestSettings
from ingest.window import InsertOutcome, WindowStore

log = logging.getLogger(__name__)

CELLS_BEYOND_BOUNDS = "cells_beyond_bounds"
"""The site's count of accepted frames' cells read as nodata because they lay beyond the
physical bounds (`ingest.reader.RAIN_RATE_MAX_MMH`, `DBZ_PHYSICAL`); all sites' total in
`core.keys.CELLS_BEYOND_BOUNDS`."""


class ArchiveUnavailable(RuntimeError):
    """The raw frame could not be archived: do not acknowledge it, try again later."""


@dataclass(frozen=True)
class IngestResult:
    """What became of one frame. ``outcome``: accepted, archived_only or quarantined."""

    outcome: str
    source: str
    site_id: str | None = None
    valid_time: datetime | None = None
    reason: RejectReason | None = None
    message: str = ""
    elapsed_ms: float = 0.0


def norm_params_for(settings: IngestSettings, site_id: str) -> NormParams:
    """Global normalisation parameters with the site's overrides applied.

    A site with ``cell_km`` is normalised by cell size: the crop and the disk keep their
    extent in km (``crop_cells`` and ``disk_radius_cells`` at `PAPER_CELL_KM` cells), and a
    smaller grid is padded as outside coverage.
    """
    site = settings.site(site_id)
    crop_cells = site.crop_cells or settings.crop_cells
    disk_radius_cells = settings.disk_radius_cells
    if site.cell_km is not None:
        crop_cells = max(8, round(crop_cells * PAPER_CELL_KM / site.cell_km))
        disk_radius_cells = round(disk_radius_cells * PAPER_CELL_KM / site.cell_km)
    return NormParams(
        dbz_min=settings.dbz_min,
        dbz_max=settings.dbz_max,
        zr_a=settings.zr_a,
        zr_b=settings.zr_b,
        crop_cells=crop_cells,
        target_cells=site.target_cells or settings.target_cells,
        disk_radius_cells=disk_radius_cells,
        pad_to_crop=site.cell_km is not None,
        no_echo_dbz=site.no_echo_dbz,
    )


class Ingestor:
    """Takes raw frames one at a time; safe to call from one thread per instance."""

    def __init__(
        self,
        settings: IngestSettings,
        connection: redis.Redis,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.redis = connection
        self.archive = Archive(settings.archive_path)
        self.quarantine = Quarantine(settings.quarantine_path, settings.quarantine_max_bytes)
        self.window = WindowStore.from_settings(connection, settings)
        self.masks = MaskStore(connection, settings.masks_path)
        self.natives = NativeStore(connection)
        self._now = now

    def ingest_bytes(
        self, raw: bytes, source: str, site_id: str | None = None, emit_event: bool = True
    ) -> IngestResult:
        """Ingest one raw NetCDF frame; ``source`` names it in logs and quarantine notes."""
        started = time.perf_counter()
        try:
            result = self._ingest(raw, source, site_id, emit_event)
        except FrameRejected as rejected:
            if rejected.reason is not RejectReason.NO_SITE:  # the caller's site, if unread
                rejected.site_id = rejected.site_id or site_id
            result = self._reject(raw, source, rejected)
        except (ArchiveUnavailable, redis.RedisError):
            raise  # not the frame's fault: the caller retries it
        except Exception as exc:  # a bug must not stop the worker, nor lose the frame
            log.exception("internal error on %s", source)
            result = self._reject(
                raw, source, FrameRejected(RejectReason.INTERNAL_ERROR, repr(exc))
            )
        elapsed_ms = (time.perf_counter() - started) * 1000
        result = IngestResult(**{**result.__dict__, "elapsed_ms": elapsed_ms})
        log.info(
            "%s site=%s time=%s ms=%.1f source=%s%s",
            result.outcome,
            result.site_id or "-",
            result.valid_time.strftime("%Y-%m-%dT%H:%M:%SZ") if result.valid_time else "-",
            elapsed_ms,
            source,
            f" reason={result.reason.value}: {result.message}" if result.reason else "",
        )
        return result

    def _ingest(
        self, raw: bytes, source: str, site_id: str | None, emit_event: bool
    ) -> IngestResult:
        if len(raw) > self.settings.max_frame_bytes:
            raise FrameRejected(
                RejectReason.TOO_LARGE,
                f"{len(raw)} bytes exceeds the limit of {self.settings.max_frame_bytes}",
            )
        field = read_radar_bytes(raw, source, site_id, (self.settings.zr_a, self.settings.zr_b))
        try:
            return self._ingest_field(raw, source, field, emit_event)
        except FrameRejected as rejected:
            rejected.site_id = field.site_id
            raise

    def _ingest_field(
        self, raw: bytes, source: str, field: RadarField, emit_event: bool
    ) -> IngestResult:
        self._check_time(field)
        self._check_grid(field)
        frame = self.normalise(field)
        georef = self._check_georef(field)
        try:
            archived = self.archive.store(field.site_id, field.valid_time, raw)
        except OSError as exc:
            raise ArchiveUnavailable(f"cannot archive {source}: {exc}") from exc
        if archived is ArchiveOutcome.CONFLICT:
            raise FrameRejected(
                RejectReason.CONFLICT,
                f"another frame for {field.site_id} at {field.valid_time:%Y-%m-%dT%H:%M:%SZ} "
                "is archived already; the first one is kept",
            )
        if not self.window.holds(field.site_id, field.valid_time):  # its product-grid frame
            self.natives.put(self.native_frame(field))  # first: the event finds it stored
        placed = self.window.insert(frame, emit_event=emit_event)
        self.natives.trim(field.site_id)  # the window's times: what it dropped, or refused
        if archived is ArchiveOutcome.DUPLICATE and placed is not InsertOutcome.INSERTED:
            raise FrameRejected(
                RejectReason.DUPLICATE,
                f"identical frame for {field.site_id} at {field.valid_time:%Y-%m-%dT%H:%M:%SZ} "
                "was ingested already",
            )
        self._record_site(field, frame, georef)
        outcome = "archived_only" if placed is InsertOutcome.TOO_OLD else "accepted"
        self._count(field.site_id, outcome)
        if field.cells_beyond_bounds:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incrby(keys.CELLS_BEYOND_BOUNDS, field.cells_beyond_bounds)
            pipe.hincrby(
                keys.site_counts(field.site_id), CELLS_BEYOND_BOUNDS, field.cells_beyond_bounds
            )
            pipe.execute()
            log.warning(
                "%s: %d cells beyond the physical bounds read as nodata",
                source,
                field.cells_beyond_bounds,
            )
        return IngestResult(outcome, source, field.site_id, field.valid_time)

    def native_frame(self, field: RadarField) -> NativeFrame:
        """The radar's own rain rate on its grid (`ingest.native`), for the products."""
        zr = (self.settings.zr_a, self.settings.zr_b)
        return NativeFrame(field.site_id, field.valid_time, native_rain_mmh(field.dbz, zr))

    def normalise(self, field: RadarField) -> Frame:
        """RadarField -> Frame with the site's parameters and its current noise mask."""
        params = norm_params_for(self.settings, field.site_id)
        current = self.masks.current(field.site_id)
        mask = current[1] if current else None
        if mask is not None and mask.shape != (params.target_cells, params.target_cells):
            log.warning("site %s: mask %s does not fit, ignored", field.site_id, mask.shape)
            current, mask = None, None
        try:
            grey, covered = normalise_dbz(field.dbz, params, mask)
        except ValueError as exc:  # grid smaller than the crop
            raise FrameRejected(RejectReason.WRONG_GRID, str(exc)) from exc
        if covered == 0.0:
            raise FrameRejected(RejectReason.ALL_NAN, "no observed cell in the centre crop")
        return Frame(
            site_id=field.site_id,
            valid_time=field.valid_time,
            grey=grey,
            norm_version=params.version,
            mask_version=current[0] if current else None,
        )

    def _check_time(self, field: RadarField) -> None:
        now = self._now()
        if field.valid_time > now + timedelta(minutes=self.settings.max_future_min):
            raise FrameRejected(
                RejectReason.FUTURE_TIME,
                f"valid time {field.valid_time:%Y-%m-%dT%H:%M:%SZ} is more than "
                f"{self.settings.max_future_min:g} min in the future",
            )
        max_age = self.settings.max_age_min
        if max_age is not None and field.valid_time < now - timedelta(minutes=max_age):
            raise FrameRejected(
                RejectReason.PAST_TIME,
                f"valid time {field.valid_time:%Y-%m-%dT%H:%M:%SZ} is more than {max_age:g} min "
                "before the clock (max_age_min, for a live feed)",
            )

    def _check_grid(self, field: RadarField) -> None:
        configured = self.settings.site(field.site_id).grid_shape
        known = configured or self._known_grid(field.site_id)
        shape = tuple(field.dbz.shape)
        if known is not None and shape != tuple(known):
            raise FrameRejected(
                RejectReason.WRONG_GRID,
                f"grid {shape[0]} x {shape[1]} differs from site {field.site_id}'s "
                f"{known[0]} x {known[1]}",
            )

    def _known_grid(self, site_id: str) -> tuple[int, int] | None:
        value = self.redis.hget(keys.site_meta(site_id), "grid")
        if value is None:
            return None
        rows, cols = value.decode().split("x")
        return int(rows), int(cols)

    def _check_georef(self, field: RadarField) -> GridGeoref | None:
        """The normalised grid's geometry, refused when it differs from the site's.

        The site's first georeferenced frame fixes it, like the grid shape; a frame without
        georeference is taken on the site's grid.
        """
        if field.georef is None:
            return None
        params = norm_params_for(self.settings, field.site_id)
        georef = target_georef(field.georef, params)
        known = self.redis.hget(keys.site_meta(field.site_id), "georef")
        if known:
            site = GridGeoref.from_json(known)
            if not georef.same_grid(site):
                raise FrameRejected(
                    RejectReason.WRONG_GRID,
                    f"the frame's grid lies elsewhere than site {field.site_id}'s (another "
                    "projection, origin or cell size)",
                )
        return georef

    def _record_site(self, field: RadarField, frame: Frame, georef: GridGeoref | None) -> None:
        meta = {
            "grid": f"{field.dbz.shape[0]}x{field.dbz.shape[1]}",
            "quantity": field.quantity,
            "norm_version": frame.norm_version,
            "mask_version": frame.mask_version or "",
            "last_ingest_at": self._now().isoformat(),
        }
        if georef is not None:
            meta["georef"] = georef.to_json()
        if field.georef is not None:
            meta["native_georef"] = field.georef.to_json()  # the radar's own grid
        self.redis.hset(keys.site_meta(field.site_id), mapping=meta)

    def _count(self, site_id: str | None, outcome: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(keys.COUNTS, outcome, 1)
        if site_id:
            pipe.hincrby(keys.site_counts(site_id), outcome, 1)
        pipe.execute()

    def _reject(self, raw: bytes, source: str, rejected: FrameRejected) -> IngestResult:
        record = self.quarantine.put(raw, source, rejected.reason, rejected.message)
        if not record.kept:
            log.warning("quarantine full: %s noted, its %d bytes not kept", source, len(raw))
        try:
            self._count(rejected.site_id, f"quarantined:{rejected.reason.value}")
        except redis.RedisError:
            log.warning("could not count the quarantine of %s (redis down)", source)
        return IngestResult(
            "quarantined",
            source,
            rejected.site_id,
            reason=rejected.reason,
            message=rejected.message,
        )
