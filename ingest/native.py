"""The radar's own frame, kept beside the network's normalised one (issue 30's product grid).

The normalised 100 x 100 frame is the network's input representation; this is the radar's
rain rate on its own grid and resolution, peaks included, with "no radar" (NaN) kept apart
from "no rain" (0), for the products and scores that must show what the radar measured.

Packing (`pack_native`, pure): rain rate in steps of `RAIN_STEP_MMH` as uint16 (`NODATA` where
the radar did not see), zlib-compressed, behind a small header (magic, shape, valid time, site).
Rain fields are mostly dry, so a frame takes a few hundred kB at most (FMI's 1226 x 760
composite of a rainy afternoon: about 100 kB). No pickle: a hostile blob fails with ValueError.

`NativeStore` keeps each site's native frames in Redis beside its window, for the same valid
times (trimmed to the window's after each insert).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import redis
from numpy.typing import NDArray

from core import keys
from core.conversion import dbz_to_rain_rate_mmh

MAGIC = b"NWN1"
RAIN_STEP_MMH = 0.01
"""Packing step of the rain rate: 0.01 mm/h (values to 655.34 mm/h; the reader bounds rain at
300 mm/h)."""
NODATA = np.uint16(65535)
_HEADER = struct.Struct("<4sIIq")  # magic, rows, cols, valid time (epoch s)


@dataclass(frozen=True)
class NativeFrame:
    """The radar's rain rate (H, W) float32 in mm/h on its own grid; NaN: not observed."""

    site_id: str
    valid_time: datetime
    rain_mmh: NDArray[np.float32]

    @property
    def covered_fraction(self) -> float:
        return float(np.isfinite(self.rain_mmh).mean())

    def max_rain_mmh(self) -> float:
        finite = self.rain_mmh[np.isfinite(self.rain_mmh)]
        return float(finite.max()) if finite.size else 0.0


def native_rain_mmh(dbz: NDArray[np.floating], zr: tuple[float, float]) -> NDArray[np.float32]:
    """A `core.frame.RadarField`'s dBZ (H, W) as rain rate in mm/h (NaN stays NaN, no echo 0)."""
    with np.errstate(over="ignore", invalid="ignore"):
        rain = dbz_to_rain_rate_mmh(np.asarray(dbz, dtype=np.float32), zr[0], zr[1])
    return np.asarray(rain, dtype=np.float32)


def pack_native(frame: NativeFrame) -> bytes:
    """`NativeFrame` -> bytes (header, then the zlib-compressed uint16 steps)."""
    rain = np.asarray(frame.rain_mmh, dtype=np.float64)
    steps = np.full(rain.shape, NODATA, dtype="<u2")
    seen = np.isfinite(rain)
    steps[seen] = np.clip(np.round(rain[seen] / RAIN_STEP_MMH), 0, int(NODATA) - 1)
    site = frame.site_id.encode("ascii")
    header = _HEADER.pack(MAGIC, *rain.shape, int(frame.valid_time.timestamp()))
    return header + struct.pack("<B", len(site)) + site + zlib.compress(steps.tobytes(), 1)


def unpack_native(blob: bytes) -> NativeFrame:
    """bytes -> `NativeFrame`; ValueError on anything that is not a packed native frame."""
    try:
        magic, rows, cols, epoch = _HEADER.unpack_from(blob, 0)
        if magic != MAGIC or rows * cols > 8192 * 8192:
            raise ValueError("not a packed native frame")
        offset = _HEADER.size
        (length,) = struct.unpack_from("<B", blob, offset)
        site = bytes(blob[offset + 1 : offset + 1 + length]).decode("ascii")
        raw = zlib.decompress(blob[offset + 1 + length :], bufsize=rows * cols * 2)
        steps = np.frombuffer(raw, dtype="<u2").reshape(rows, cols)
    except (struct.error, zlib.error, UnicodeDecodeError, OverflowError) as exc:
        raise ValueError(f"malformed native frame: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"malformed native frame: {exc}") from exc
    rain = np.where(steps == NODATA, np.nan, steps * RAIN_STEP_MMH).astype(np.float32)
    return NativeFrame(site, datetime.fromtimestamp(epoch, tz=UTC), rain)


class NativeStore:
    """Each site's native frames in Redis (a hash epoch -> packed frame), the window's times."""

    def __init__(self, connection: redis.Redis) -> None:
        self._redis = connection

    def put(self, frame: NativeFrame) -> None:
        """Store ``frame``: before its window insert, so that the frame's event finds it;
        `trim` after the insert drops what the window no longer holds."""
        epoch = str(int(frame.valid_time.timestamp()))
        self._redis.hset(keys.native_frames(frame.site_id), epoch, pack_native(frame))

    def trim(self, site_id: str) -> None:
        """Drop the native frames of valid times the site's window does not hold."""
        key = keys.native_frames(site_id)
        kept = {m.decode() for m in self._redis.zrange(keys.window_times(site_id), 0, -1)}
        stale = [f for f in self._redis.hkeys(key) if f.decode() not in kept]
        if stale:
            self._redis.hdel(key, *stale)

    def get(self, site_id: str, valid_time: datetime) -> NativeFrame | None:
        blob = self._redis.hget(keys.native_frames(site_id), str(int(valid_time.timestamp())))
        return unpack_native(blob) if blob else None

    def newest(self, site_id: str) -> NativeFrame | None:
        times = [int(t) for t in self._redis.hkeys(keys.native_frames(site_id))]
        if not times:
            return None
        return self.get(site_id, datetime.fromtimestamp(max(times), tz=UTC))

    def bytes_held(self, site_id: str) -> int:
        """Bytes of the site's packed native frames (Redis's own overhead aside)."""
        blobs = self._redis.hvals(keys.native_frames(site_id))
        return sum(len(b) for b in blobs)
