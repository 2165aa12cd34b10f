"""One stored nowcast: a method's 15 grey frames for one site and issue time, and its codec.

Encoded for Redis as ``b"NWC1"`` + u32 header length + JSON header + zlib(uint16 grey * 65535
[+ uint8 probability in percent]), so a hostile blob can only fail with ValueError (no
pickle). uint16 keeps grey levels to 1.5e-5 (0.001 dBZ), far below radar precision, at half
the size of float32. A probabilistic method (an ensemble) adds its probabilities of exceedance
per (lead, threshold, cell) in whole percent, the thresholds and member count in the header.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.conversion import grey_to_rain_rate_mmh
from core.georef import GridGeoref
from core.settings import CoreSettings

MAGIC = b"NWC1"
_GREY_SCALE = 65535.0
_MAX_HEADER_BYTES = 64 * 1024
_MAX_CELLS = 64 * 1024 * 1024


@dataclass(frozen=True)
class RainConversion:
    """The grey -> mm/h conversion a forecast was made with (fixed dBZ bounds and Z-R)."""

    dbz_min: float
    dbz_max: float
    zr_a: float
    zr_b: float

    @classmethod
    def from_settings(cls, settings: CoreSettings) -> RainConversion:
        """The conversion the settings prescribe."""
        return cls(settings.dbz_min, settings.dbz_max, settings.zr_a, settings.zr_b)

    def rain_mmh(self, grey: NDArray[np.floating]) -> NDArray[np.float32]:
        """Rain rate (mm/h), same shape as ``grey``; grey 0 is exactly 0 mm/h."""
        return grey_to_rain_rate_mmh(grey, self.dbz_min, self.dbz_max, self.zr_a, self.zr_b)


@dataclass(frozen=True, eq=False)
class Forecast:
    """A nowcast of one method for one site.

    ``grey``: (n_leads, H, W) float32 grey levels in [0, 1], lead 1 first; lead k is valid at
    ``issue_time + k * cadence_min``. ``issue_time`` is the valid time of the newest input frame
    (UTC). ``model_version`` names the weights (checkpoint hash) or the baseline's variant.
    """

    site_id: str
    method: str
    issue_time: datetime
    cadence_min: float
    grey: NDArray[np.float32]
    model_version: str
    norm_version: str
    conversion: RainConversion
    created_at: datetime
    georef: GridGeoref | None = None  # where the (H, W) cells lie; None: grid indices only
    probability: NDArray[np.float32] | None = None
    """(n_leads, n_thresholds, H, W) probability of rain >= each of ``thresholds_mmh``, in
    [0, 1], for a probabilistic method (``grey`` is then the ensemble mean); else None."""
    thresholds_mmh: tuple[float, ...] = ()
    members: int | None = None  # ensemble size behind ``probability``

    @property
    def n_leads(self) -> int:
        return int(self.grey.shape[0])

    @property
    def lead_minutes(self) -> list[float]:
        """Lead times in minutes: cadence, 2 cadence, ... (n_leads numbers)."""
        return [self.cadence_min * (k + 1) for k in range(self.n_leads)]

    @property
    def valid_times(self) -> list[datetime]:
        return [self.issue_time + timedelta(minutes=m) for m in self.lead_minutes]

    def rain_mmh(self) -> NDArray[np.float32]:
        """(n_leads, H, W) rain rate in mm/h."""
        return self.conversion.rain_mmh(self.grey)

    def lead_of(self, valid_time: datetime) -> int | None:
        """1-based lead whose valid time is ``valid_time``, or None if none is."""
        steps = (valid_time - self.issue_time).total_seconds() / (self.cadence_min * 60.0)
        lead = round(steps)
        if abs(steps - lead) > 1e-6 or not 1 <= lead <= self.n_leads:
            return None
        return lead

    def header(self) -> dict[str, Any]:
        """JSON-safe description without the frames."""
        return {
            "site_id": self.site_id,
            "method": self.method,
            "issue_time": _iso(self.issue_time),
            "cadence_min": self.cadence_min,
            "shape": list(self.grey.shape),
            "model_version": self.model_version,
            "norm_version": self.norm_version,
            "conversion": {
                "dbz_min": self.conversion.dbz_min,
                "dbz_max": self.conversion.dbz_max,
                "zr_a": self.conversion.zr_a,
                "zr_b": self.conversion.zr_b,
            },
            "created_at": _iso(self.created_at),
            "georef": json.loads(self.georef.to_json()) if self.georef else None,
            "probability": (
                {"thresholds_mmh": list(self.thresholds_mmh), "members": self.members}
                if self.probability is not None
                else None
            ),
        }


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """ISO 8601 time -> aware UTC datetime; a naive time is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def encode_forecast(forecast: Forecast) -> bytes:
    """Forecast -> bytes (see the module docstring)."""
    header = json.dumps(forecast.header(), separators=(",", ":")).encode()
    grey = np.clip(np.nan_to_num(forecast.grey, nan=0.0), 0.0, 1.0)
    payload = np.rint(grey * _GREY_SCALE).astype("<u2").tobytes()
    if forecast.probability is not None:
        expected = (forecast.n_leads, len(forecast.thresholds_mmh), *forecast.grey.shape[1:])
        if forecast.probability.shape != expected:
            raise ValueError(f"probability shape {forecast.probability.shape} != {expected}")
        percent = np.rint(np.clip(np.nan_to_num(forecast.probability), 0.0, 1.0) * 100.0)
        payload += percent.astype(np.uint8).tobytes()
    return MAGIC + struct.pack("<I", len(header)) + header + zlib.compress(payload, 1)


def decode_forecast(blob: bytes) -> Forecast:
    """bytes -> Forecast; ValueError on anything malformed."""
    try:
        return _decode(blob)
    except (KeyError, TypeError, struct.error, json.JSONDecodeError, zlib.error) as exc:
        raise ValueError(f"malformed forecast blob: {exc}") from exc


def _decode(blob: bytes) -> Forecast:
    if len(blob) < 8 or blob[:4] != MAGIC:
        raise ValueError("not an encoded forecast (bad magic)")
    (length,) = struct.unpack_from("<I", blob, 4)
    if length > _MAX_HEADER_BYTES or 8 + length > len(blob):
        raise ValueError(f"bad forecast header length {length}")
    head = json.loads(blob[8 : 8 + length])
    shape = tuple(int(n) for n in head["shape"])
    cells = int(np.prod(shape))
    if len(shape) != 3 or min(shape) < 1 or cells > _MAX_CELLS:
        raise ValueError(f"bad forecast shape {shape}")
    described = head.get("probability")
    thresholds = tuple(float(t) for t in described["thresholds_mmh"]) if described else ()
    if described and not 1 <= len(thresholds) <= 16:
        raise ValueError(f"bad probability thresholds {thresholds}")
    size = 2 * cells + len(thresholds) * cells
    decompressor = zlib.decompressobj()
    raw = decompressor.decompress(blob[8 + length :], size + 1)
    if len(raw) != size or decompressor.unconsumed_tail:
        raise ValueError(f"forecast payload does not match shape {shape}")
    grey = (np.frombuffer(raw[: 2 * cells], dtype="<u2").astype(np.float32) / _GREY_SCALE).reshape(
        shape
    )
    probability = None
    if described:
        percent = np.frombuffer(raw[2 * cells :], dtype=np.uint8)
        if percent.max(initial=0) > 100:
            raise ValueError("probability above 100 %")
        probability = (percent.astype(np.float32) / 100.0).reshape(
            shape[0], len(thresholds), *shape[1:]
        )
    c = head["conversion"]
    return Forecast(
        site_id=str(head["site_id"]),
        method=str(head["method"]),
        issue_time=parse_time(head["issue_time"]),
        cadence_min=float(head["cadence_min"]),
        grey=grey,
        model_version=str(head["model_version"]),
        norm_version=str(head["norm_version"]),
        conversion=RainConversion(
            float(c["dbz_min"]), float(c["dbz_max"]), float(c["zr_a"]), float(c["zr_b"])
        ),
        created_at=parse_time(head["created_at"]),
        georef=GridGeoref.from_json(json.dumps(head["georef"])) if head.get("georef") else None,
        probability=probability,
        thresholds_mmh=thresholds,
        members=int(described["members"]) if described and described.get("members") else None,
    )
