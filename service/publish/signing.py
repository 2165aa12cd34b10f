"""Signed webhook deliveries per the Standard Webhooks specification (symmetric ``v1``); pure
functions. https://www.standardwebhooks.com

Every delivery carries three headers:

- ``webhook-id``: the delivery id (`service.publish.message.DeliveryJob.delivery_id`), the
  same for every attempt and replay, so a receiver de-duplicates on it;
- ``webhook-timestamp``: when the attempt was signed, unix seconds;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` over ``f"{id}.{timestamp}."`` + body.
  Several space-separated entries may be given (secret rotation); one match suffices.

The secret is ``whsec_`` followed by the base64 of 24 to 64 random bytes; the HMAC key is
those bytes (`new_secret` makes one). Receivers can use the specification's published
verifiers, e.g. in Python ``standardwebhooks.Webhook(secret).verify(body, headers)``, or
`verify` here; either refuses a timestamp more than 5 minutes from its clock (a replay).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = (24, 64)
"""Smallest and largest key, in bytes (the specification's range)."""
DEFAULT_TOLERANCE_S = 300.0


class SignatureError(ValueError):
    """Headers missing or malformed, timestamp stale, or no signature matches the body."""


def new_secret(n_bytes: int = 32) -> str:
    """A fresh secret: ``whsec_`` + base64 of ``n_bytes`` random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(n_bytes)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ValueError (never echoing it) otherwise."""
    hint = "make one with `nowcast publish --new-secret`"
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r} ({hint})")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"a webhook secret is whsec_ + base64 ({hint})") from None
    low, high = SECRET_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"a webhook secret's key is {low} to {high} bytes, not {len(key)}")
    return key


def signature(key: bytes, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, f"{msg_id}.{timestamp_s}." + body)>``."""
    signed = f"{msg_id}.{int(timestamp_s)}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, body: bytes, timestamp_s: int) -> dict[str, str]:
    """The three Standard Webhooks headers of ``body`` sent as ``msg_id`` at ``timestamp_s``."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(int(timestamp_s)),
        SIGNATURE_HEADER: signature(secret_key(secret), msg_id, timestamp_s, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> int:
    """Check a delivery's headers (any case) against its raw ``body``; returns its timestamp.

    ``now``: the receiver's clock (unix s). Raises `SignatureError` when a header is missing
    or malformed, the timestamp is more than ``tolerance_s`` from ``now``, or no ``v1``
    signature matches (compared in constant time).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, given = (lower.get(h) for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    if not (msg_id and stamp and given):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not stamp.isdigit():
        raise SignatureError("malformed webhook-timestamp (want unix seconds)")
    timestamp_s = int(stamp)
    if abs(now - timestamp_s) > tolerance_s:
        raise SignatureError(f"timestamp {timestamp_s} is outside {tolerance_s:g} s of now")
    expected = signature(secret_key(secret), msg_id, timestamp_s, body).encode()
    matched = False
    for entry in given.split(" "):
        matched |= hmac.compare_digest(expected, entry.encode())
    if not matched:
        raise SignatureError("signature does not match the body")
    return timestamp_s
