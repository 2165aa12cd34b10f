"""The disk kernel and the NaN-aware disk filter (ingest.normalize) against independent code
(tests.ingest.normalize_reference)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from ingest.normalize import (
    disk_filter,
    disk_kernel,
)
from tests.ingest.normalize_reference import (
    normalised_convolution,
    reference_disk,
)

# --- disk kernel -------------------------------------------------------------------------------


def test_disk_kernel_shape_sum_symmetry_corners() -> None:
    k = disk_kernel(10)
    assert k.shape == (21, 21)
    assert k.dtype == np.float32
    assert float(k.sum(dtype=np.float64)) == pytest.approx(1.0, abs=1e-6)
    assert (k >= 0).all()
    np.testing.assert_array_equal(k, k[::-1, :])
    np.testing.assert_array_equal(k, k[:, ::-1])
    np.testing.assert_array_equal(k, k.T)
    np.testing.assert_array_equal(k, np.rot90(k))
    for corner in (k[0, 0], k[0, -1], k[-1, 0], k[-1, -1]):
        assert corner == 0.0
    # cells fully outside the circle are 0: nearest point of cell (0, 1) is at (9.5, 8.5) > 10
    assert k[0, 1] == 0.0
    assert k[10, 0] > 0.0  # the circle reaches into the middle cell of each side
    assert k[10, 10] == pytest.approx(1.0 / (math.pi * 10**2), rel=2e-3)
    assert k[10, 10] == k.max()


def test_disk_kernel_support_is_the_circle(ref_kernel10: np.ndarray) -> None:
    np.testing.assert_array_equal(disk_kernel(10) > 0, ref_kernel10 > 0)


def test_disk_kernel_interior_cells_are_equal_to_the_centre(ref_kernel10: np.ndarray) -> None:
    k = disk_kernel(10)
    full = ref_kernel10 == ref_kernel10.max()  # cells entirely inside the circle
    assert full.sum() > 200
    assert np.ptp(k[full]) == 0.0


def test_disk_kernel_area_weights_match_supersampled_reference(
    ref_kernel10: np.ndarray,
) -> None:
    """Edge weights are the cell's area inside the circle (MATLAB fspecial('disk'))."""
    k = disk_kernel(10).astype(np.float64)
    worst = float(np.abs(k - ref_kernel10).max() / ref_kernel10.max())
    assert worst <= 2e-3, f"kernel weights off by {worst:.2e} of the centre weight"


@pytest.mark.parametrize("radius", [1, 2, 3, 5])
def test_small_disk_kernels(radius: int) -> None:
    k = disk_kernel(radius)
    assert k.shape == (2 * radius + 1, 2 * radius + 1)
    assert float(k.sum(dtype=np.float64)) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(k, k.T)
    np.testing.assert_array_equal(k, k[::-1, ::-1])
    # corner cell [r - 0.5, r + 0.5]^2 touches the circle only for r = 1 (0.5 sqrt 2 < 1)
    assert (k[0, 0] > 0) == (radius == 1)
    np.testing.assert_array_equal(k > 0, reference_disk(radius, 100) > 0)


def test_disk_kernel_radius_zero_is_identity() -> None:
    k = disk_kernel(0)
    assert k.shape == (1, 1)
    assert k[0, 0] == 1.0


# --- disk filter -------------------------------------------------------------------------------


def test_disk_filter_equals_ndimage_convolve_on_valid_interior() -> None:
    rng = np.random.default_rng(11)
    r, size = 10, 120
    field = rng.random((size + 2 * r, size + 2 * r)).astype(np.float32)
    out, covered = disk_filter(field, r)
    assert out.shape == (size, size)
    assert out.dtype == np.float32
    assert covered == 1.0
    expected = ndimage.convolve(
        field.astype(np.float64), disk_kernel(r).astype(np.float64), mode="constant"
    )[r:-r, r:-r]
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_disk_filter_of_a_constant_field_is_the_constant() -> None:
    field = np.full((60, 60), 0.3, dtype=np.float32)
    out, covered = disk_filter(field, 10)
    assert out.shape == (40, 40)
    np.testing.assert_allclose(out, 0.3, atol=1e-6)
    assert covered == 1.0


def test_disk_filter_of_a_single_spike_is_the_kernel() -> None:
    r = 10
    field = np.zeros((2 * r + 1 + 2 * r, 2 * r + 1 + 2 * r), dtype=np.float32)
    field[2 * r, 2 * r] = 1.0
    out, _ = disk_filter(field, r)
    np.testing.assert_allclose(out, disk_kernel(r), atol=1e-6)


def test_half_nan_field_gives_finite_output_and_right_covered_fraction() -> None:
    rng = np.random.default_rng(5)
    r, size = 10, 100
    field = rng.random((size + 2 * r, size + 2 * r)).astype(np.float32)
    field[:, 70:] = np.nan  # central columns 60.. are NaN: 40 of 100 central columns
    out, covered = disk_filter(field, r)
    assert np.isfinite(out).all()
    assert ((out >= 0) & (out <= 1)).all()
    assert covered == pytest.approx(60 / 100)
    avg, den = normalised_convolution(field, disk_kernel(r).astype(np.float64))
    avg, den = avg[r:-r, r:-r], den[r:-r, r:-r]
    seen = den > 0
    np.testing.assert_allclose(out[seen], avg[seen], atol=1e-4)
    np.testing.assert_array_equal(out[~seen], 0.0)


def test_covered_fraction_counts_only_the_central_region() -> None:
    r, size = 10, 50
    field = np.zeros((size + 2 * r, size + 2 * r), dtype=np.float32)
    field[:r, :] = np.nan  # the margin only
    field[r : r + 5, r : r + 10] = np.nan  # 50 central cells
    _, covered = disk_filter(field, r)
    assert covered == pytest.approx(1.0 - 50 / size**2)


def test_constant_patch_among_nan_stays_constant_where_covered(
    ref_kernel10: np.ndarray,
) -> None:
    """Values are averaged from covered cells only: a 0.4 patch stays 0.4, 0 where unseen."""
    r, size = 10, 150
    n = size + 2 * r
    yy, xx = np.mgrid[:n, :n]
    coverage = (yy - 60) ** 2 + (xx - 90) ** 2 <= 45**2  # a radar circle
    coverage |= (yy > 130) & (xx < 40)  # and a second block
    field = np.where(coverage, np.float32(0.4), np.float32(np.nan)).astype(np.float32)
    out, covered = disk_filter(field, r)
    support = (ref_kernel10 > 0).astype(np.float64)
    seen = ndimage.convolve(coverage.astype(np.float64), support, mode="constant")[r:-r, r:-r]
    seen = seen > 0.5
    assert seen.any()
    assert (~seen).any()
    np.testing.assert_allclose(out[seen], 0.4, atol=1e-4)
    np.testing.assert_array_equal(out[~seen], 0.0)
    assert covered == pytest.approx(coverage[r:-r, r:-r].mean())


def test_nan_never_becomes_rain_in_the_filter() -> None:
    r = 10
    field = np.full((120, 120), np.nan, dtype=np.float32)
    field[40:70, 30:90] = 0.0  # a dry region, all else unobserved
    out, covered = disk_filter(field, r)
    assert np.isfinite(out).all()
    assert float(np.abs(out).max()) == 0.0
    assert covered == pytest.approx(30 * 60 / 100**2)


def test_all_nan_field_gives_zero_and_no_coverage() -> None:
    out, covered = disk_filter(np.full((60, 60), np.nan, dtype=np.float32), 10)
    np.testing.assert_array_equal(out, 0.0)
    assert covered == 0.0


def test_disk_filter_radius_zero() -> None:
    field = np.array([[0.1, np.nan], [0.7, 1.0]], dtype=np.float32)
    out, covered = disk_filter(field, 0)
    np.testing.assert_allclose(out, [[0.1, 0.0], [0.7, 1.0]])
    assert covered == 0.75
