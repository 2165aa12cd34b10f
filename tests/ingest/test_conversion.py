"""Unit conversions rain rate <-> dBZ <-> grey (core.conversion), checked against math/numpy.

The expected values are computed here from the textbook formulas in float64 (Marshall-Palmer
Z = 200 R^1.6, dBZ = 10 log10 Z, grey = (dBZ - min) / (max - min) clipped), never by calling the
code's own formulas.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.conversion import (
    accumulation_mm_to_rain_rate_mmh,
    dbz_to_grey,
    dbz_to_rain_rate_mmh,
    grey_to_dbz,
    grey_to_rain_rate_mmh,
    rain_rate_mmh_to_dbz,
)

DBZ_MIN, DBZ_MAX = -10.0, 70.0


def mp_dbz(rain_mmh: float, a: float = 200.0, b: float = 1.6) -> float:
    """Independent reference: dBZ of a rain rate through Z = a R^b."""
    return 10.0 * math.log10(a * rain_mmh**b)


def mp_rain(dbz: float, a: float = 200.0, b: float = 1.6) -> float:
    """Independent reference: rain rate of a reflectivity, R = (Z / a)^(1/b)."""
    return (10.0 ** (dbz / 10.0) / a) ** (1.0 / b)


# --- Marshall-Palmer ---------------------------------------------------------------------------


def test_one_mm_per_hour_is_ten_log10_200() -> None:
    dbz = rain_rate_mmh_to_dbz(np.array([1.0]))
    assert dbz.dtype == np.float32
    assert dbz[0] == pytest.approx(10.0 * math.log10(200.0), rel=1e-6)
    assert dbz[0] == pytest.approx(23.0103, abs=1e-4)


@pytest.mark.parametrize("rain", [0.01, 0.1, 0.5, 1.0, 2.5, 10.0, 50.0, 200.0])
def test_rain_to_dbz_matches_marshall_palmer(rain: float) -> None:
    got = float(rain_rate_mmh_to_dbz(np.array([rain]))[0])
    assert got == pytest.approx(mp_dbz(rain), abs=2e-5)


@pytest.mark.parametrize("dbz", [-10.0, 0.0, 10.0, 23.0103, 35.0, 50.0, 65.0])
def test_dbz_to_rain_matches_marshall_palmer(dbz: float) -> None:
    got = float(dbz_to_rain_rate_mmh(np.array([dbz]))[0])
    assert got == pytest.approx(mp_rain(dbz), rel=1e-5)


def test_custom_zr_coefficients() -> None:
    a, b = 300.0, 1.4  # WSR-88D convective relation
    rain = np.array([0.3, 4.0, 25.0])
    got = rain_rate_mmh_to_dbz(rain, a=a, b=b)
    np.testing.assert_allclose(got, [mp_dbz(r, a, b) for r in rain], atol=2e-5)
    back = dbz_to_rain_rate_mmh(got, a=a, b=b)
    np.testing.assert_allclose(back, rain, rtol=2e-5)


def test_known_values_table() -> None:
    # Z = 200 R^1.6: R = 10 mm/h -> Z = 200 * 10^1.6 -> 39.0103 dBZ; R = 100 -> 55.0103 dBZ
    got = rain_rate_mmh_to_dbz(np.array([10.0, 100.0]))
    np.testing.assert_allclose(got, [39.0103, 55.0103], atol=1e-4)


def test_round_trip_rain_dbz_rain_on_a_grid() -> None:
    rain = np.geomspace(1e-3, 500.0, 1001)
    back = dbz_to_rain_rate_mmh(rain_rate_mmh_to_dbz(rain))
    np.testing.assert_allclose(back, rain, rtol=1e-5)


def test_zero_rain_is_minus_inf_dbz_grey_zero_and_back_to_zero() -> None:
    dbz = rain_rate_mmh_to_dbz(np.array([0.0]))
    assert np.isneginf(dbz[0])
    grey = dbz_to_grey(dbz, DBZ_MIN, DBZ_MAX)
    assert grey[0] == 0.0
    assert dbz_to_rain_rate_mmh(dbz)[0] == 0.0
    assert grey_to_rain_rate_mmh(grey, DBZ_MIN, DBZ_MAX)[0] == 0.0


def test_shapes_and_dtype_kept() -> None:
    for shape in [(), (5,), (3, 4), (2, 3, 4)]:
        rain = np.full(shape, 2.0)
        for out in (
            rain_rate_mmh_to_dbz(rain),
            dbz_to_rain_rate_mmh(rain),
            dbz_to_grey(rain, DBZ_MIN, DBZ_MAX),
            grey_to_dbz(np.full(shape, 0.5), DBZ_MIN, DBZ_MAX),
            grey_to_rain_rate_mmh(np.full(shape, 0.5), DBZ_MIN, DBZ_MAX),
            accumulation_mm_to_rain_rate_mmh(rain, 6),
        ):
            assert out.shape == shape
            assert out.dtype == np.float32


# --- NaN ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "func",
    [
        rain_rate_mmh_to_dbz,
        dbz_to_rain_rate_mmh,
        lambda x: accumulation_mm_to_rain_rate_mmh(x, 6),
        lambda x: dbz_to_grey(x, DBZ_MIN, DBZ_MAX),
        lambda x: grey_to_dbz(x, DBZ_MIN, DBZ_MAX),
        lambda x: grey_to_rain_rate_mmh(x, DBZ_MIN, DBZ_MAX),
    ],
    ids=[
        "rain_to_dbz",
        "dbz_to_rain",
        "accumulation",
        "dbz_to_grey",
        "grey_to_dbz",
        "grey_to_rain",
    ],
)
def test_nan_stays_nan(func) -> None:
    """Module contract: "NaN (no observation) stays NaN" in every conversion."""
    values = np.array([[np.nan, 0.5], [0.25, np.nan]], dtype=np.float32)
    out = func(values)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(values))


# --- grey levels -------------------------------------------------------------------------------


def test_grey_bounds_and_clipping() -> None:
    dbz = np.array([-np.inf, -40.0, -10.0, 10.0, 30.0, 50.0, 70.0, 90.0, np.inf])
    expected = [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    got = dbz_to_grey(dbz, DBZ_MIN, DBZ_MAX)
    np.testing.assert_allclose(got, expected, atol=1e-7)
    assert got.min() >= 0.0
    assert got.max() <= 1.0


def test_grey_other_bounds() -> None:
    got = dbz_to_grey(np.array([0.0, 20.0, 60.0]), 0.0, 60.0)
    np.testing.assert_allclose(got, [0.0, 1.0 / 3.0, 1.0], atol=1e-7)


def test_grey_to_dbz_inverse_on_open_closed_unit_interval() -> None:
    grey = np.array([1e-4, 0.0125, 0.25, 0.5, 0.875, 1.0])
    expected = DBZ_MIN + grey * (DBZ_MAX - DBZ_MIN)
    np.testing.assert_allclose(grey_to_dbz(grey, DBZ_MIN, DBZ_MAX), expected, atol=1e-5)
    np.testing.assert_allclose(
        dbz_to_grey(grey_to_dbz(grey, DBZ_MIN, DBZ_MAX), DBZ_MIN, DBZ_MAX), grey, atol=1e-6
    )


def test_grey_zero_or_below_is_minus_inf_dbz_and_zero_rain() -> None:
    grey = np.array([0.0, -0.5])
    assert np.isneginf(grey_to_dbz(grey, DBZ_MIN, DBZ_MAX)).all()
    np.testing.assert_array_equal(grey_to_rain_rate_mmh(grey, DBZ_MIN, DBZ_MAX), [0.0, 0.0])


def test_grey_to_rain_rate_values() -> None:
    # grey 0.5 -> 30 dBZ -> R = (10^3 / 200)^(1/1.6) = 5^0.625 mm/h
    got = grey_to_rain_rate_mmh(np.array([0.5, 1.0]), DBZ_MIN, DBZ_MAX)
    np.testing.assert_allclose(got, [5.0**0.625, mp_rain(70.0)], rtol=1e-5)


# --- accumulations -----------------------------------------------------------------------------


def test_accumulation_over_6_and_10_minutes() -> None:
    mm = np.array([0.0, 0.05, 1.0, 2.5])
    np.testing.assert_allclose(accumulation_mm_to_rain_rate_mmh(mm, 6), [0.0, 0.5, 10.0, 25.0])
    np.testing.assert_allclose(accumulation_mm_to_rain_rate_mmh(mm, 10), [0.0, 0.3, 6.0, 15.0])
    np.testing.assert_allclose(accumulation_mm_to_rain_rate_mmh(mm, 60), mm)
    np.testing.assert_allclose(accumulation_mm_to_rain_rate_mmh(mm, 5.0), mm * 12.0)


@pytest.mark.parametrize("interval", [0, -6, 0.0, float("nan")])
def test_accumulation_needs_a_positive_interval(interval: float) -> None:
    with pytest.raises(ValueError):
        accumulation_mm_to_rain_rate_mmh(np.ones(3), interval)


def test_accumulation_chain_to_dbz() -> None:
    # 0.1 mm in 6 min = 1 mm/h = 10 log10(200) dBZ
    dbz = rain_rate_mmh_to_dbz(accumulation_mm_to_rain_rate_mmh(np.array([0.1]), 6))
    assert dbz[0] == pytest.approx(10.0 * math.log10(200.0), abs=2e-5)


# --- inputs never modified ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inputs_not_modified(dtype) -> None:
    rng = np.random.default_rng(3)
    base = rng.uniform(0.0, 60.0, (16, 16)).astype(dtype)
    base[0, 0] = np.nan
    base[1, 1] = 0.0
    calls = [
        lambda x: rain_rate_mmh_to_dbz(x),
        lambda x: dbz_to_rain_rate_mmh(x),
        lambda x: accumulation_mm_to_rain_rate_mmh(x, 6),
        lambda x: dbz_to_grey(x, DBZ_MIN, DBZ_MAX),
        lambda x: grey_to_dbz(x / 60.0, DBZ_MIN, DBZ_MAX),
        lambda x: grey_to_rain_rate_mmh(x / 60.0, DBZ_MIN, DBZ_MAX),
    ]
    for call in calls:
        values = base.copy()
        out = call(values)
        np.testing.assert_array_equal(values, base)  # NaN compares equal here
        assert values.dtype == dtype
        assert not np.shares_memory(out, values)


# --- hypothesis properties ---------------------------------------------------------------------

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a dev tool, not a runtime dependency

    @pytest.mark.skip(reason="hypothesis is not installed")
    def test_hypothesis_properties() -> None:
        """Placeholder so the skip is visible."""

else:
    rain_values = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)
    dbz_values = st.floats(min_value=-40.0, max_value=100.0, allow_nan=False)

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(st.lists(rain_values, min_size=2, max_size=50))
    def test_rain_to_dbz_is_monotone(values: list[float]) -> None:
        rain = np.sort(np.array(values, dtype=np.float32))
        dbz = rain_rate_mmh_to_dbz(rain)
        assert np.all(np.diff(dbz) >= 0)
        assert np.all(np.isfinite(dbz))

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(st.lists(dbz_values, min_size=2, max_size=50))
    def test_dbz_to_grey_and_rain_are_monotone(values: list[float]) -> None:
        dbz = np.sort(np.array(values, dtype=np.float32))
        grey = dbz_to_grey(dbz, DBZ_MIN, DBZ_MAX)
        assert np.all(np.diff(grey) >= 0)
        assert np.all((grey >= 0) & (grey <= 1))
        assert np.all(np.diff(dbz_to_rain_rate_mmh(dbz)) >= 0)

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(rain_values)
    def test_rain_dbz_round_trip(rain: float) -> None:
        r32 = float(np.float32(rain))
        dbz = rain_rate_mmh_to_dbz(np.array([r32], dtype=np.float32))
        assert float(dbz[0]) == pytest.approx(mp_dbz(r32), abs=3e-5)
        back = float(dbz_to_rain_rate_mmh(dbz)[0])
        assert back == pytest.approx(r32, rel=1e-5)

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(st.floats(min_value=-9.99, max_value=70.0))
    def test_dbz_grey_round_trip(dbz: float) -> None:
        grey = dbz_to_grey(np.array([dbz]), DBZ_MIN, DBZ_MAX)
        assert float(grey[0]) == pytest.approx((dbz - DBZ_MIN) / (DBZ_MAX - DBZ_MIN), abs=1e-6)
        back = float(grey_to_dbz(grey, DBZ_MIN, DBZ_MAX)[0])
        assert back == pytest.approx(dbz, abs=1e-4)

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(st.floats(min_value=1e-3, max_value=1.0))
    def test_grey_rain_grey_round_trip(grey: float) -> None:
        rain = grey_to_rain_rate_mmh(np.array([grey]), DBZ_MIN, DBZ_MAX)
        assert float(rain[0]) == pytest.approx(mp_rain(DBZ_MIN + grey * 80.0), rel=2e-5)
        back = dbz_to_grey(rain_rate_mmh_to_dbz(rain), DBZ_MIN, DBZ_MAX)
        assert float(back[0]) == pytest.approx(grey, abs=1e-6)
