"""Compact binary encoding of a `Frame` for Redis: a small header, then the raw array.

Layout (little-endian):
    magic   4 bytes  b"NWF1"
    dtype   u8       1 = float32, 2 = float16, 3 = uint8
    ndim    u8       then ndim x u32 shape
    time    i64      valid time, seconds since 1970-01-01 UTC
    3 x (u8 length + ASCII): site id, normalisation version, mask version ("" = none)
    payload          the array, C order
No pickle: decoding a hostile blob can only fail with `ValueError`.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

import numpy as np

from core.frame import Frame

MAGIC = b"NWF1"
_DTYPES: dict[int, np.dtype[Any]] = {1: np.dtype("<f4"), 2: np.dtype("<f2"), 3: np.dtype("u1")}
_CODES = {dt: code for code, dt in _DTYPES.items()}


def _pack_text(text: str) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > 255:
        raise ValueError(f"header text too long: {text[:40]!r}...")
    return struct.pack("<B", len(raw)) + raw


def encode_frame(frame: Frame) -> bytes:
    """Frame -> bytes; the grey array keeps its dtype (float32 by default)."""
    grey = np.ascontiguousarray(frame.grey)
    dtype = grey.dtype.newbyteorder("<") if grey.dtype.byteorder == ">" else grey.dtype
    if dtype not in _CODES:
        raise ValueError(f"unsupported dtype {grey.dtype}")
    header = MAGIC + struct.pack("<BB", _CODES[dtype], grey.ndim)
    header += struct.pack(f"<{grey.ndim}I", *grey.shape)
    header += struct.pack("<q", int(frame.valid_time.timestamp()))
    for text in (frame.site_id, frame.norm_version, frame.mask_version or ""):
        header += _pack_text(text)
    return header + grey.astype(dtype, copy=False).tobytes()


def decode_frame(blob: bytes) -> Frame:
    """bytes -> Frame; raises ValueError on anything that is not a well-formed frame."""
    try:
        return _decode(memoryview(blob))
    except (struct.error, UnicodeDecodeError, OverflowError, OSError) as exc:
        raise ValueError(f"malformed frame blob: {exc}") from exc


def _decode(view: memoryview) -> Frame:
    if len(view) < 6 or bytes(view[:4]) != MAGIC:
        raise ValueError("not an encoded frame (bad magic)")
    code, ndim = struct.unpack_from("<BB", view, 4)
    if code not in _DTYPES or not 1 <= ndim <= 4:
        raise ValueError(f"bad frame header (dtype code {code}, ndim {ndim})")
    offset = 6
    shape = struct.unpack_from(f"<{ndim}I", view, offset)
    offset += 4 * ndim
    (epoch,) = struct.unpack_from("<q", view, offset)
    offset += 8
    texts = []
    for _ in range(3):
        (length,) = struct.unpack_from("<B", view, offset)
        texts.append(bytes(view[offset + 1 : offset + 1 + length]).decode("ascii"))
        offset += 1 + length
    dtype = _DTYPES[code]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(view) - offset != expected:
        raise ValueError(f"frame payload is {len(view) - offset} bytes, header says {expected}")
    grey = np.frombuffer(view[offset:], dtype=dtype).reshape(shape).copy()
    return Frame(
        site_id=texts[0],
        valid_time=datetime.fromtimestamp(epoch, tz=UTC),
        grey=grey,
        norm_version=texts[1],
        mask_version=texts[2] or None,
    )
