"""Binary frame encoding (ingest.codec): bit-exact round trips; hostile blobs raise ValueError only.

The layout checks build blobs by hand with ``struct`` from the documented layout, so they do not
depend on the encoder.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core.frame import Frame
from ingest.codec import MAGIC, decode_frame, encode_frame

T0 = datetime(2018, 6, 16, 15, 24, tzinfo=UTC)


def make_frame(grey: np.ndarray, **kw: object) -> Frame:
    values: dict[str, object] = {
        "site_id": "melb-2",
        "valid_time": T0,
        "grey": grey,
        "norm_version": "n1-3fa2c91b",
        "mask_version": "m20260101T000000Z-0123abcd",
    }
    values.update(kw)
    return Frame(**values)  # type: ignore[arg-type]


def assert_same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def decode_or_value_error(blob: bytes) -> Frame | None:
    """Decode; ValueError (or a subclass) is the only accepted failure."""
    try:
        frame = decode_frame(blob)
    except ValueError:
        return None
    except Exception as exc:  # any other type is the failure this checks
        pytest.fail(f"decode_frame raised {type(exc).__name__} (not ValueError): {exc}")
    assert isinstance(frame, Frame)
    return frame


def hand_blob(
    code: int, shape: tuple[int, ...], epoch: int, texts: tuple[bytes, ...], payload: bytes
) -> bytes:
    """A blob from the documented layout, written with struct directly."""
    blob = MAGIC + struct.pack("<BB", code, len(shape)) + struct.pack(f"<{len(shape)}I", *shape)
    blob += struct.pack("<q", epoch)
    for text in texts:
        blob += bytes([len(text)]) + text
    return blob + payload


# --- round trips -------------------------------------------------------------------------------


def _special_values(dtype: type) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype is np.uint8:
        return rng.integers(0, 256, (100, 100), dtype=np.uint8)
    grey: np.ndarray = rng.random((100, 100)).astype(dtype)
    grey.flat[:6] = [np.nan, np.inf, -np.inf, -0.0, np.finfo(dtype).tiny, np.finfo(dtype).max]
    return grey


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.uint8])
def test_round_trip_is_bit_exact(dtype: type) -> None:
    grey = _special_values(dtype)
    frame = make_frame(grey)
    back = decode_frame(encode_frame(frame))
    assert_same_bits(back.grey, grey)
    assert back.site_id == frame.site_id
    assert back.valid_time == frame.valid_time
    assert back.valid_time.utcoffset() == timedelta(0)
    assert back.norm_version == frame.norm_version
    assert back.mask_version == frame.mask_version


def test_nan_payload_bits_survive() -> None:
    grey = np.array([0x7FC00001, 0xFFC12345, 0x7F800001], dtype=np.uint32).view(np.float32)
    back = decode_frame(encode_frame(make_frame(grey)))
    assert_same_bits(back.grey, grey)


@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (1, 2, 3, 4), (0,), (100, 100)])
def test_round_trip_shapes(shape: tuple[int, ...]) -> None:
    grey = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) / 7.0
    back = decode_frame(encode_frame(make_frame(grey)))
    assert_same_bits(back.grey, grey)


@pytest.mark.parametrize(
    "when",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2016, 9, 28, 14, 45, tzinfo=UTC),
        datetime(2021, 1, 1, 20, 5, tzinfo=UTC),
        datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC),
    ],
)
def test_round_trip_times(when: datetime) -> None:
    back = decode_frame(encode_frame(make_frame(np.zeros((2, 2), np.float32), valid_time=when)))
    assert back.valid_time == when
    assert back.valid_time.tzinfo is not None


@pytest.mark.parametrize("mask_version", [None, "m20260301T120000Z-deadbeef"])
@pytest.mark.parametrize("site", ["melb-2", "mtstapl-66", "fi-fmi-composite", "x", "a" * 64])
def test_round_trip_site_and_versions(site: str, mask_version: str | None) -> None:
    frame = make_frame(
        np.ones((3, 3), np.uint8),
        site_id=site,
        mask_version=mask_version,
        norm_version="n7-" + "f" * 8,
    )
    back = decode_frame(encode_frame(frame))
    assert (back.site_id, back.norm_version, back.mask_version) == (
        site,
        "n7-ffffffff",
        mask_version,
    )


def test_empty_mask_version_reads_as_none() -> None:
    back = decode_frame(encode_frame(make_frame(np.zeros(1, np.float32), mask_version="")))
    assert back.mask_version is None


def test_big_endian_and_non_contiguous_inputs() -> None:
    base = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    back = decode_frame(encode_frame(make_frame(base.astype(">f4"))))
    np.testing.assert_array_equal(back.grey, base)
    assert back.grey.dtype == np.dtype("<f4")
    back = decode_frame(encode_frame(make_frame(base[::2, ::3])))
    assert_same_bits(back.grey, np.ascontiguousarray(base[::2, ::3]))


def test_decoded_array_is_writable_and_independent() -> None:
    blob = encode_frame(make_frame(np.zeros((4, 4), np.float32)))
    back = decode_frame(blob)
    back.grey[0, 0] = 1.0  # a frombuffer view of bytes would be read-only
    assert decode_frame(blob).grey[0, 0] == 0.0


def test_layout_matches_the_documentation() -> None:
    grey = np.array([[0.25, 0.5], [0.75, 1.0]], dtype=np.float32)
    frame = make_frame(grey, valid_time=datetime(2020, 10, 31, tzinfo=UTC))
    expected = hand_blob(
        1,
        (2, 2),
        1604102400,
        (b"melb-2", b"n1-3fa2c91b", b"m20260101T000000Z-0123abcd"),
        grey.astype("<f4").tobytes(),
    )
    assert encode_frame(frame) == expected
    back = decode_frame(expected)
    assert_same_bits(back.grey, grey)


def test_hand_built_uint8_and_float16_blobs_decode() -> None:
    payload = bytes(range(6))
    frame = decode_frame(hand_blob(3, (2, 3), 0, (b"s", b"n", b""), payload))
    np.testing.assert_array_equal(frame.grey, np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert frame.mask_version is None
    assert frame.valid_time == datetime(1970, 1, 1, tzinfo=UTC)
    half = np.array([1.5, -2.0], dtype="<f2")
    frame = decode_frame(hand_blob(2, (2,), 60, (b"s", b"n", b"m"), half.tobytes()))
    assert_same_bits(frame.grey, half)


@pytest.mark.parametrize("dtype", [np.float64, np.int16, np.int32, np.bool_, np.complex64])
def test_unsupported_dtype_is_refused(dtype: type) -> None:
    with pytest.raises(ValueError):
        encode_frame(make_frame(np.zeros((2, 2), dtype=dtype)))


def test_overlong_header_text_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_frame(make_frame(np.zeros(2, np.float32), norm_version="n" * 256))


# --- hostile blobs -----------------------------------------------------------------------------

VALID = encode_frame(make_frame(np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)))


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"N",
        b"NWF",
        b"NWF1",
        b"NWF1\x01",
        b"XXXX" + VALID[4:],
        b"nwf1" + VALID[4:],
        b"NWF2" + VALID[4:],
        b"\x00" * 64,
        b"\xff" * 64,
    ],
)
def test_bad_magic_or_tiny_blobs_raise_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError):
        decode_frame(blob)


def test_every_truncation_raises_value_error() -> None:
    for cut in range(len(VALID)):
        assert decode_or_value_error(VALID[:cut]) is None, cut


def test_extra_or_missing_payload_raises_value_error() -> None:
    for blob in (VALID + b"\x00", VALID + b"\x00" * 4, VALID[:-1], VALID[:-4]):
        with pytest.raises(ValueError):
            decode_frame(blob)


@pytest.mark.parametrize(
    ("code", "shape", "payload_len"),
    [
        (0, (2, 2), 16),  # unknown dtype codes
        (4, (2, 2), 16),
        (255, (2, 2), 16),
        (1, (), 4),  # ndim 0
        (1, (1, 1, 1, 1, 1), 4),  # ndim 5
        (1, (3, 3), 32),  # payload shorter than the shape
        (1, (2, 2), 20),  # payload longer than the shape
        (3, (0xFFFFFFFF, 0xFFFFFFFF), 0),  # absurd shape
        (1, (65536, 65536, 65536, 65536), 0),  # product overflows 64 bits to 0
        (1, (0xFFFFFFFF,) * 4, 16),
    ],
)
def test_inconsistent_headers_raise_value_error(
    code: int, shape: tuple[int, ...], payload_len: int
) -> None:
    blob = hand_blob(code, shape, 0, (b"s", b"n", b""), b"\x00" * payload_len)
    with pytest.raises(ValueError):
        decode_frame(blob)


def test_text_length_running_past_the_end_raises_value_error() -> None:
    head = MAGIC + struct.pack("<BB", 1, 1) + struct.pack("<I", 1) + struct.pack("<q", 0)
    assert decode_or_value_error(head + b"\xff" + b"abc") is None
    assert decode_or_value_error(head + b"\x01s\x01n\xf0") is None


def test_non_ascii_text_raises_value_error() -> None:
    blob = hand_blob(1, (1,), 0, ("é".encode(), b"n", b""), b"\x00" * 4)
    with pytest.raises(ValueError):
        decode_frame(blob)


@pytest.mark.parametrize("epoch", [2**62, -(2**62), 2**63 - 1, -(2**63), 10**15, -(10**15)])
def test_out_of_range_time_raises_value_error(epoch: int) -> None:
    blob = hand_blob(1, (1,), epoch, (b"s", b"n", b""), b"\x00" * 4)
    assert decode_or_value_error(blob) is None


def test_single_byte_corruptions_raise_value_error_or_decode() -> None:
    for pos in range(len(VALID)):
        for value in (0x00, 0xFF, VALID[pos] ^ 0x01):
            blob = bytearray(VALID)
            blob[pos] = value
            decode_or_value_error(bytes(blob))


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a dev tool, not a runtime dependency

    @pytest.mark.skip(reason="hypothesis is not installed")
    def test_hypothesis_hostile_blobs() -> None:
        """Placeholder so the skip is visible."""

else:

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(st.binary(max_size=200))
    def test_random_bytes_raise_value_error_only(blob: bytes) -> None:
        decode_or_value_error(blob)

    @settings(max_examples=500, deadline=None, database=None, derandomize=True)
    @given(st.binary(max_size=120))
    def test_random_bytes_after_magic_raise_value_error_only(tail: bytes) -> None:
        decode_or_value_error(MAGIC + tail)

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(
        st.integers(min_value=1, max_value=3),
        st.lists(st.integers(min_value=0, max_value=2**32 - 1), min_size=1, max_size=4),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.binary(max_size=64),
    )
    def test_structured_hostile_headers(
        code: int, shape: list[int], epoch: int, payload: bytes
    ) -> None:
        decode_or_value_error(hand_blob(code, tuple(shape), epoch, (b"s", b"n", b""), payload))

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(st.data())
    def test_mutated_valid_blobs(data: st.DataObject) -> None:
        blob = bytearray(VALID)
        for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
            pos = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
            blob[pos] = data.draw(st.integers(min_value=0, max_value=255))
        cut = data.draw(st.integers(min_value=0, max_value=len(blob)))
        decode_or_value_error(bytes(blob[:cut]))

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(
        st.sampled_from([np.float32, np.float16, np.uint8]),
        st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=4),
        st.integers(min_value=-(2**31), max_value=2**33),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=64),
        st.one_of(st.none(), st.text(alphabet="0123456789abcdefmTZ-", min_size=1, max_size=40)),
        st.data(),
    )
    def test_round_trip_property(
        dtype: type,
        shape: list[int],
        epoch: int,
        site: str,
        mask_version: str | None,
        data: st.DataObject,
    ) -> None:
        n = int(np.prod(shape))
        raw = data.draw(
            st.binary(min_size=n * np.dtype(dtype).itemsize, max_size=n * np.dtype(dtype).itemsize)
        )
        grey = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
        when = datetime.fromtimestamp(epoch, tz=UTC)
        frame = make_frame(grey, site_id=site, valid_time=when, mask_version=mask_version)
        back = decode_frame(encode_frame(frame))
        assert_same_bits(back.grey, grey)
        assert (back.site_id, back.valid_time, back.mask_version) == (site, when, mask_version)
