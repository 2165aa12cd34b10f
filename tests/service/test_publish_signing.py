"""Webhook signatures per the Standard Webhooks specification: what its reference verifier
(the `standardwebhooks` package) accepts, and what is refused (tampering, replays, bad secrets)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from service.publish.signing import (
    SignatureError,
    new_secret,
    secret_key,
    signature,
    signed_headers,
    verify,
)
from tests.service.publish_helpers import OTHER_SECRET, SECRET

BODY = b'{"site":"synth-01","issue_time":"2026-03-01T12:24:00Z"}'
MSG_ID = "hook:synth-01:20260301T122400Z"
T = 1_772_366_640


def test_the_headers_are_the_specifications_and_its_reference_verifier_accepts_them():
    now = int(time.time())
    headers = signed_headers(SECRET, MSG_ID, BODY, now)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == MSG_ID and headers["webhook-timestamp"] == str(now)
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{MSG_ID}.{now}.".encode() + BODY, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()
    assert Webhook(SECRET).verify(BODY, headers) == {
        "site": "synth-01",
        "issue_time": "2026-03-01T12:24:00Z",
    }
    assert verify(SECRET, headers, BODY, now=now + 5) == now
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(BODY, headers)


def test_a_binary_body_is_signed_over_its_bytes():
    """NetCDF payloads: the same signature over the raw bytes (the Python reference verifier
    only takes text, so a receiver of NetCDF verifies the bytes as `verify` does)."""
    body = b"CDF\x01\x00\xff\xfe" * 10
    headers = signed_headers(SECRET, MSG_ID, body, T)
    assert verify(SECRET, headers, body, now=T) == T
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, headers, body[:-1], now=T)


def test_a_tampered_body_id_or_timestamp_or_another_secret_is_refused():
    headers = signed_headers(SECRET, MSG_ID, BODY, T)
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, headers, BODY.replace(b"12:24", b"12:30"), now=T)
    with pytest.raises(SignatureError, match="does not match"):
        verify(OTHER_SECRET, headers, BODY, now=T)
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, {**headers, "webhook-id": "hook:other:1"}, BODY, now=T)
    with pytest.raises(SignatureError, match="does not match"):  # re-timed without the secret
        verify(SECRET, {**headers, "webhook-timestamp": str(T + 600)}, BODY, now=T + 600)


def test_a_stale_or_future_timestamp_is_refused_as_a_replay():
    headers = signed_headers(SECRET, MSG_ID, BODY, T)
    for now in (T + 301, T - 301):
        with pytest.raises(SignatureError, match="outside 300 s"):
            verify(SECRET, headers, BODY, now=now)
    assert verify(SECRET, headers, BODY, now=T + 3000, tolerance_s=3600) == T


@pytest.mark.parametrize("drop", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(drop):
    headers = signed_headers(SECRET, MSG_ID, BODY, T)
    del headers[drop]
    with pytest.raises(SignatureError, match="missing"):
        verify(SECRET, headers, BODY, now=T)


def test_headers_match_in_any_case_and_a_malformed_timestamp_is_refused():
    headers = {k.title(): v for k, v in signed_headers(SECRET, MSG_ID, BODY, T).items()}
    assert verify(SECRET, headers, BODY, now=T) == T
    with pytest.raises(SignatureError, match="malformed"):
        verify(SECRET, {**headers, "Webhook-Timestamp": "soon"}, BODY, now=T)


def test_one_valid_signature_among_several_is_enough_for_secret_rotation():
    current = signed_headers(SECRET, MSG_ID, BODY, T)["webhook-signature"]
    old = signature(secret_key(OTHER_SECRET), MSG_ID, T, BODY)
    for both in (f"{old} {current}", f"{current} {old}"):
        headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(T), "webhook-signature": both}
        assert verify(SECRET, headers, BODY, now=T) == T
    headers["webhook-signature"] = old
    with pytest.raises(SignatureError):
        verify(SECRET, headers, BODY, now=T)


def test_new_secrets_are_random_and_in_the_specifications_form():
    first, second = new_secret(), new_secret()
    assert first != second and first.startswith("whsec_")
    assert len(secret_key(first)) == 32
    Webhook(first)  # the reference implementation reads it
    for bad, message in (
        ("k3y-0123456789abcdef0123", "starts with 'whsec_'"),
        ("whsec_@@@@", "base64"),
        ("whsec_" + base64.b64encode(b"x" * 8).decode(), "24 to 64 bytes, not 8"),
    ):
        with pytest.raises(ValueError, match=message) as refused:
            secret_key(bad)
        assert bad not in str(refused.value)


def test_the_cli_prints_a_new_secret_that_the_settings_accept(tmp_path):
    import subprocess
    import sys

    from service.settings import Settings
    from tests.service.publish_helpers import webhook

    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "publish", "--new-secret"],
        capture_output=True,
        text=True,
        check=True,
    )
    secret = result.stdout.strip()
    assert len(secret_key(secret)) == 32
    hook = {**webhook("https://hooks.example.org/n"), "secret": secret}
    assert Settings(data_dir=tmp_path, subscribers=[hook]).subscribers[0].secret is not None
