"""Pre-processing of one frame (ingest.normalize) against independent numpy/scipy/skimage code.

References built here: the disk kernel from a 200 x 200 supersampling per cell (own code), the
disk filter with ``scipy.ndimage.convolve``, the resize with ``skimage.transform.resize``, the
crop and reflect padding with explicit index arithmetic.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from ingest.normalize import (
    NormParams,
    centre_crop,
    normalise_dbz,
    resize,
)
from tests.ingest.normalize_reference import (
    grey_of,
    normalised_convolution,
    reference_disk,
    sk_bilinear,
)

# --- resize ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "target"), [(330, 100), (64, 32), (100, 100), (57, 20)])
def test_resize_equals_skimage_bilinear(size: int, target: int) -> None:
    rng = np.random.default_rng(size)
    field = rng.random((size, size)).astype(np.float32)
    got = resize(field, target)
    assert got.shape == (target, target)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, sk_bilinear(field.astype(np.float64), target), atol=1e-6)


def test_resize_of_smooth_field_is_close_to_sampling_it() -> None:
    size, target = 330, 100
    centres = (np.arange(size) + 0.5) / size
    field = np.add.outer(centres, 2 * centres).astype(np.float32) / 3.0  # linear ramp
    got = resize(field, target)
    tc = (np.arange(target) + 0.5) / target
    np.testing.assert_allclose(got, np.add.outer(tc, 2 * tc) / 3.0, atol=2e-3)


# --- centre crop -------------------------------------------------------------------------------


def _index_field(h: int, w: int) -> np.ndarray:
    return (np.arange(h)[:, None] * 1000 + np.arange(w)[None, :]).astype(np.float64)


@pytest.mark.parametrize(
    ("h", "w", "size"),
    [
        (11, 11, 5),
        (12, 12, 6),
        (12, 12, 5),
        (11, 11, 6),
        (512, 512, 330),
        (765, 700, 330),
        (1226, 760, 330),
        (9, 14, 4),
    ],
)
def test_centre_crop_picks_the_centre(h: int, w: int, size: int) -> None:
    crop = centre_crop(_index_field(h, w), size)
    assert crop.shape == (size, size)
    assert crop.dtype == np.float32
    rows = crop[:, 0] // 1000
    cols = crop[0, :] % 1000
    # contiguous rows and columns
    np.testing.assert_array_equal(np.diff(rows), 1)
    np.testing.assert_array_equal(np.diff(cols), 1)
    # centre of the crop vs centre of the grid: exact when the leftover is even, half a cell off
    # (never more) when it is odd
    for picked, n in ((rows, h), (cols, w)):
        offset = (picked[0] + picked[-1]) / 2.0 - (n - 1) / 2.0
        if (n - size) % 2 == 0:
            assert offset == 0.0
        else:
            assert abs(offset) == 0.5


def _reflect(i: int, n: int) -> int:
    """numpy 'reflect' (edge not repeated): -1 -> 1, n -> n - 2."""
    while i < 0 or i >= n:
        i = -i if i < 0 else 2 * (n - 1) - i
    return i


@pytest.mark.parametrize(
    ("h", "w", "size", "margin"),
    [(20, 20, 20, 3), (22, 25, 20, 3), (21, 20, 20, 4), (40, 40, 20, 3)],
)
def test_centre_crop_margin_reflects_where_missing(h: int, w: int, size: int, margin: int) -> None:
    field = _index_field(h, w)
    crop = centre_crop(field, size, margin=margin)
    assert crop.shape == (size + 2 * margin, size + 2 * margin)
    top, left = (h - size) // 2, (w - size) // 2
    for a in range(size + 2 * margin):
        for b in range(size + 2 * margin):
            i = _reflect(top - margin + a, h)
            j = _reflect(left - margin + b, w)
            assert crop[a, b] == field[i, j], (a, b)


def test_centre_crop_margin_with_room_is_a_plain_slice() -> None:
    field = _index_field(512, 512)
    crop = centre_crop(field, 330, margin=10)
    np.testing.assert_array_equal(crop, field[81:431, 81:431])


@pytest.mark.parametrize("shape", [(329, 400), (400, 329), (10, 10)])
def test_centre_crop_refuses_a_small_grid(shape: tuple[int, int]) -> None:
    size = 330 if shape[0] > 10 else 11
    with pytest.raises(ValueError):
        centre_crop(np.zeros(shape), size)


def test_centre_crop_does_not_modify_input() -> None:
    field = _index_field(50, 50)
    before = field.copy()
    crop = centre_crop(field, 20, margin=30)
    crop[:] = -1
    np.testing.assert_array_equal(field, before)


# --- whole chain -------------------------------------------------------------------------------


def independent_pipeline(
    dbz: np.ndarray, kernel: np.ndarray, crop: int = 330, target: int = 100
) -> tuple[np.ndarray, float]:
    """grey -> (reflect-pad if the grid is short) -> NaN-aware disk average -> crop -> resize."""
    r = kernel.shape[0] // 2
    h, w = dbz.shape
    grey = grey_of(dbz)
    top, left = (h - crop) // 2, (w - crop) // 2
    # rows/cols needed: top - r .. top + crop + r; pad by reflection what the grid lacks
    rows = [_reflect(i, h) for i in range(top - r, top + crop + r)]
    cols = [_reflect(j, w) for j in range(left - r, left + crop + r)]
    window = grey[np.ix_(rows, cols)]
    avg, _ = normalised_convolution(window, kernel)
    central = avg[r:-r, r:-r]
    covered = float(np.isfinite(window[r:-r, r:-r]).mean())
    return np.clip(sk_bilinear(central, target), 0.0, 1.0), covered


def test_normalise_dbz_random_field_matches_independent_pipeline(
    ref_kernel10: np.ndarray,
) -> None:
    rng = np.random.default_rng(2024)
    dbz = rng.uniform(-25.0, 80.0, (512, 512)).astype(np.float32)
    out, covered = normalise_dbz(dbz, NormParams())
    assert out.shape == (100, 100)
    assert out.dtype == np.float32
    assert covered == 1.0
    # the plain full-grid version: convolve the whole 512 grid, then crop the centre
    grey = grey_of(dbz)
    full = ndimage.convolve(grey, ref_kernel10, mode="constant")[91:421, 91:421]
    expected = sk_bilinear(full, 100)
    # 2e-4: float32 arithmetic plus the kernel's own area estimate (checked in its own test)
    np.testing.assert_allclose(out, expected, atol=2e-4)
    expected2, _ = independent_pipeline(dbz, ref_kernel10)
    np.testing.assert_allclose(out, expected2, atol=2e-4)


def test_normalise_dbz_smooth_rain_field(ref_kernel10: np.ndarray) -> None:
    yy, xx = np.mgrid[:512, :512]
    dbz = 55.0 * np.exp(-((yy - 230) ** 2 + (xx - 280) ** 2) / (2 * 60.0**2)) - 5.0
    dbz = dbz.astype(np.float32)
    out, _ = normalise_dbz(dbz, NormParams())
    expected, _ = independent_pipeline(dbz, ref_kernel10)
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_normalise_dbz_with_nan_coverage(ref_kernel10: np.ndarray) -> None:
    rng = np.random.default_rng(9)
    yy, xx = np.mgrid[:600, :560]
    dbz = rng.uniform(-15.0, 60.0, (600, 560)).astype(np.float32)
    dbz[(yy - 250) ** 2 + (xx - 300) ** 2 > 150**2] = np.nan  # outside radar range
    dbz[rng.random(dbz.shape) < 0.2] = -np.inf  # "no rain" cells
    out, covered = normalise_dbz(dbz, NormParams())
    assert np.isfinite(out).all()
    expected, expected_covered = independent_pipeline(dbz, ref_kernel10)
    assert covered == pytest.approx(expected_covered, abs=1e-12)
    assert 0.3 < covered < 1.0
    # far from the coverage edge the average has many cells: same tolerance as above
    np.testing.assert_allclose(out, expected, atol=5e-4)


def test_normalise_dbz_short_grid_is_reflect_padded(ref_kernel10: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    dbz = rng.uniform(-10.0, 70.0, (336, 341)).astype(np.float32)
    out, covered = normalise_dbz(dbz, NormParams())
    expected, _ = independent_pipeline(dbz, ref_kernel10)
    assert covered == 1.0
    np.testing.assert_allclose(out, expected, atol=2e-4)


def test_normalise_dbz_refuses_a_grid_smaller_than_the_crop() -> None:
    with pytest.raises(ValueError):
        normalise_dbz(np.zeros((300, 512), dtype=np.float32), NormParams())


def test_normalise_dbz_nan_never_becomes_rain() -> None:
    dbz = np.full((512, 512), np.nan, dtype=np.float32)
    dbz[200:300, 150:350] = -np.inf  # observed, dry
    dbz[100:120, 100:120] = -30.0  # observed, below the grey floor
    out, covered = normalise_dbz(dbz, NormParams())
    assert np.isfinite(out).all()
    assert float(out.max()) == 0.0
    assert 0.0 < covered < 1.0


def test_normalise_dbz_all_nan_is_all_zero() -> None:
    out, covered = normalise_dbz(np.full((400, 400), np.nan, dtype=np.float32), NormParams())
    np.testing.assert_array_equal(out, 0.0)
    assert covered == 0.0


def test_normalise_dbz_does_not_modify_input() -> None:
    rng = np.random.default_rng(1)
    dbz = rng.uniform(-10.0, 70.0, (360, 360)).astype(np.float32)
    dbz[:5] = np.nan
    before = dbz.copy()
    normalise_dbz(dbz, NormParams())
    np.testing.assert_array_equal(dbz, before)


def test_noise_mask_zeroes_exactly_the_masked_cells() -> None:
    rng = np.random.default_rng(8)
    dbz = rng.uniform(10.0, 60.0, (400, 400)).astype(np.float32)
    plain, _ = normalise_dbz(dbz, NormParams())
    assert (plain > 0).all()
    mask = rng.random((100, 100)) < 0.1
    masked, _ = normalise_dbz(dbz, NormParams(), noise_mask=mask)
    np.testing.assert_array_equal(masked[mask], 0.0)
    np.testing.assert_array_equal(masked[~mask], plain[~mask])
    assert masked.dtype == np.float32


def test_noise_mask_of_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError):
        normalise_dbz(
            np.zeros((400, 400), np.float32), NormParams(), noise_mask=np.zeros((50, 50), bool)
        )


def test_small_params_chain(ref_kernel10: np.ndarray) -> None:
    params = NormParams(crop_cells=64, target_cells=32, disk_radius_cells=3)
    rng = np.random.default_rng(21)
    dbz = rng.uniform(-10.0, 70.0, (96, 96)).astype(np.float32)
    out, _ = normalise_dbz(dbz, params)
    expected, _ = independent_pipeline(dbz, reference_disk(3), crop=64, target=32)
    assert out.shape == (32, 32)
    np.testing.assert_allclose(out, expected, atol=1e-3)


# --- parameter version -------------------------------------------------------------------------


def test_norm_params_defaults_are_the_paper_values() -> None:
    p = NormParams()
    assert (p.dbz_min, p.dbz_max, p.zr_a, p.zr_b) == (-10.0, 70.0, 200.0, 1.6)
    assert (p.crop_cells, p.target_cells, p.disk_radius_cells) == (330, 100, 10)


def test_norm_params_version_is_stable() -> None:
    v = NormParams().version
    assert re.fullmatch(r"n\d+-[0-9a-f]{8}", v)
    assert NormParams().version == v
    assert NormParams(crop_cells=330).version == v
    code = "from ingest.normalize import NormParams; print(NormParams().version)"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # another process, another hash seed
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert res.stdout.strip() == v


def test_norm_params_version_changes_with_every_parameter() -> None:
    base = NormParams()
    changed: dict[str, object] = {
        "dbz_min": -5.0,
        "dbz_max": 65.0,
        "zr_a": 300.0,
        "zr_b": 1.4,
        "crop_cells": 300,
        "target_cells": 64,
        "disk_radius_cells": 5,
        "pad_to_crop": True,
        "no_echo_dbz": 0.0,
    }
    assert set(changed) == {f.name for f in dataclasses.fields(NormParams)}
    versions = {base.version}
    for name, value in changed.items():
        v = dataclasses.replace(base, **{name: value}).version  # type: ignore[arg-type]
        assert v not in versions, name
        versions.add(v)
