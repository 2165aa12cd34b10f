"""Signed deliveries: HMAC-SHA256 over ``f"{t}."`` + body, Stripe style; pure functions.

Header ``X-Nowcast-Signature: t=<unix seconds>,v1=<hex digest>``. The timestamp is signed
with the body, so a receiver that refuses timestamps older than a tolerance (300 s) refuses a
replayed request; ``X-Nowcast-Delivery`` carries the delivery id for de-duplication.
Several ``v1=`` entries may be given (secret rotation); one valid entry suffices.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Nowcast-Signature"
DELIVERY_HEADER = "X-Nowcast-Delivery"
DEFAULT_TOLERANCE_S = 300.0


class SignatureError(ValueError):
    """The signature header is missing, malformed, stale or does not match the body."""


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def signature_hex(secret: str | bytes, body: bytes, timestamp_s: int) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp_s}."`` + ``body`` under ``secret``."""
    signed = f"{int(timestamp_s)}.".encode() + body
    return hmac.new(_secret_bytes(secret), signed, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp_s: int) -> str:
    """The value of the signature header for ``body`` sent at ``timestamp_s`` (unix s)."""
    return f"t={int(timestamp_s)},v1={signature_hex(secret, body, timestamp_s)}"


def verify_signature(
    secret: str | bytes,
    header: str | None,
    body: bytes,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> int:
    """Check a signature header against ``body``; returns its timestamp (unix s).

    ``now``: the receiver's clock (unix s). Raises `SignatureError` when the header is
    missing or malformed, its timestamp is more than ``tolerance_s`` from ``now`` (a replay,
    or a skewed clock), or no ``v1`` digest matches (compared in constant time).
    """
    if not header:
        raise SignatureError("no signature header")
    timestamps: list[str] = []
    digests: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            digests.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit() or not digests:
        raise SignatureError("malformed signature header (want t=<unix>,v1=<hex>)")
    timestamp_s = int(timestamps[0])
    if abs(now - timestamp_s) > tolerance_s:
        raise SignatureError(f"timestamp {timestamp_s} is outside {tolerance_s:g} s of now")
    expected = signature_hex(secret, body, timestamp_s).encode()
    matched = False
    for digest in digests:
        matched |= hmac.compare_digest(expected, digest.encode())
    if not matched:
        raise SignatureError("signature does not match the body")
    return timestamp_s
