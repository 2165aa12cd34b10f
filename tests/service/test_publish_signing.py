"""Webhook signatures: HMAC-SHA256 over timestamp and body; tampering and replays refused."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from service.publish.signing import SignatureError, sign, verify_signature

SECRET = "whsec-0123456789abcdef"
BODY = b'{"site":"synth-01","issue_time":"2026-03-01T12:24:00Z"}'
T = 1_772_366_640


def test_a_signed_body_verifies_and_the_header_is_stripe_style():
    header = sign(SECRET, BODY, T)
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={T},v1={expected}"
    assert verify_signature(SECRET, header, BODY, now=T + 5) == T
    assert verify_signature(SECRET.encode(), header, BODY, now=T - 5) == T


def test_a_tampered_body_or_another_secret_is_refused():
    header = sign(SECRET, BODY, T)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, header, BODY.replace(b"12:24", b"12:30"), now=T)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature("another-secret-0123456789", header, BODY, now=T)


def test_a_stale_or_future_timestamp_is_refused_as_a_replay():
    header = sign(SECRET, BODY, T)
    with pytest.raises(SignatureError, match="outside 300 s"):
        verify_signature(SECRET, header, BODY, now=T + 301)
    with pytest.raises(SignatureError, match="outside 300 s"):
        verify_signature(SECRET, header, BODY, now=T - 301)
    assert verify_signature(SECRET, header, BODY, now=T + 3000, tolerance_s=3600) == T
    # re-signing the same body with a new timestamp needs the secret
    forged = header.replace(f"t={T}", f"t={T + 600}")
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, forged, BODY, now=T + 600)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=abc,v1=00", f"t={T}", f"t={T},t={T}"])
def test_a_missing_or_malformed_header_is_refused(header):
    with pytest.raises(SignatureError):
        verify_signature(SECRET, header, BODY, now=T)


def test_one_valid_digest_among_several_is_enough_for_secret_rotation():
    current = sign(SECRET, BODY, T)
    old = sign("the-old-secret-0123456789", BODY, T).split(",")[1]
    assert verify_signature(SECRET, f"{current},{old}", BODY, now=T) == T
    assert verify_signature(SECRET, f"t={T},{old},{current.split(',')[1]}", BODY, now=T) == T
