"""K-Means clutter mask (ingest.noise_mask) on synthetic months of frames.

Three months of 48 x 48 grey frames: a persistent clutter blob (high grey in every frame, with
noise) and rain blobs that move across the domain, so that no pixel is wet for long.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ingest.noise_mask import MaskFitParams, fit_clutter_mask, mask_version, monthly_means

N = 48
YY, XX = np.mgrid[:N, :N]
CLUTTER = (YY - 12) ** 2 + (XX - 35) ** 2 <= 4**2  # 49 cells
START = datetime(2026, 1, 1, tzinfo=UTC)
MONTH_STARTS = [datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3)]


def rain_blobs(t: int, rng: np.random.Generator) -> np.ndarray:
    """Two blobs of radius 6 crossing the domain along different tracks, intensity 0.4..0.8."""
    grey = np.zeros((N, N))
    for k, (y0, speed, phase) in enumerate(((30, 3, 0), (8, 2, 17))):
        cx = (phase + speed * t) % (N + 12) - 6
        cy = y0 + 6 * np.sin(0.3 * t + k)
        blob = (YY - cy) ** 2 + (XX - cx) ** 2 <= 6**2
        grey[blob] = np.maximum(grey[blob], rng.uniform(0.4, 0.8))
    return grey


def synthetic_frames(
    with_clutter: bool = True, per_month: int = 40, seed: int = 0
) -> tuple[list[tuple[datetime, np.ndarray]], np.ndarray]:
    """(valid time, grey) frames over three months and the union of all rain-touched cells."""
    rng = np.random.default_rng(seed)
    frames = []
    rain_seen = np.zeros((N, N), dtype=bool)
    t = 0
    for month_start in MONTH_STARTS:
        for i in range(per_month):
            when = month_start + timedelta(hours=17 * i + 0.1 * t)
            rain = rain_blobs(t, rng)
            rain_seen |= rain > 0
            grey = rain + rng.uniform(0.0, 0.02, (N, N))
            if with_clutter:
                grey[CLUTTER] = np.maximum(grey[CLUTTER], rng.uniform(0.6, 0.9, CLUTTER.sum()))
            frames.append((when, np.clip(grey, 0.0, 1.0).astype(np.float32)))
            t += 1
    return frames, rain_seen


def stack_months(means: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([means[m] for m in sorted(means)])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# --- monthly means -----------------------------------------------------------------------------


def test_monthly_means_match_numpy() -> None:
    frames, _ = synthetic_frames()
    means = monthly_means(frames)
    assert list(means) == ["2026-01", "2026-02", "2026-03"]
    for key in means:
        year, month = map(int, key.split("-"))
        chosen = [g for t, g in frames if (t.year, t.month) == (year, month)]
        assert len(chosen) > 0
        expected = np.mean(np.stack(chosen).astype(np.float64), axis=0)
        assert means[key].shape == (N, N)
        assert means[key].dtype == np.float64
        np.testing.assert_allclose(means[key], expected, rtol=1e-12, atol=1e-12)


def test_monthly_means_group_by_calendar_month_and_sort() -> None:
    a = np.full((2, 2), 1.0, np.float32)
    b = np.full((2, 2), 3.0, np.float32)
    frames = [
        (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), a),
        (datetime(2025, 12, 31, 23, 59, tzinfo=UTC), b),
        (datetime(2026, 2, 28, 23, 59, tzinfo=UTC), a),
        (datetime(2026, 2, 1, 0, 0, tzinfo=UTC), b),
        (datetime(2025, 12, 1, tzinfo=UTC), a),
    ]
    means = monthly_means(frames)
    assert list(means) == ["2025-12", "2026-02", "2026-03"]
    np.testing.assert_array_equal(means["2025-12"], 2.0)
    np.testing.assert_array_equal(means["2026-02"], 2.0)
    np.testing.assert_array_equal(means["2026-03"], 1.0)


def test_monthly_means_of_nothing_is_empty() -> None:
    assert monthly_means([]) == {}


def test_monthly_means_accepts_a_generator_and_keeps_inputs() -> None:
    frames, _ = synthetic_frames(per_month=5)
    copies = [g.copy() for _, g in frames]
    means = monthly_means(item for item in frames)
    assert len(means) == 3
    for (_, g), c in zip(frames, copies, strict=True):
        np.testing.assert_array_equal(g, c)


# --- clutter fit -------------------------------------------------------------------------------


def test_the_synthetic_data_is_what_it_claims() -> None:
    """Sanity of the fixture: rain covers much of the domain, but never for long."""
    frames, rain_seen = synthetic_frames()
    assert rain_seen.mean() > 0.4
    assert not (rain_seen & CLUTTER).all()
    long_term = np.mean([g for _, g in frames], axis=0)
    assert long_term[CLUTTER].min() > 0.5
    assert long_term[~CLUTTER].max() < 0.3


def test_fit_finds_the_clutter_blob_and_not_the_rain() -> None:
    frames, rain_seen = synthetic_frames()
    monthly = stack_months(monthly_means(frames))
    mask = fit_clutter_mask(monthly)
    assert mask.shape == (N, N)
    assert mask.dtype == np.bool_
    assert iou(mask, CLUTTER) > 0.8
    # nothing flagged where only the moving rain has been
    assert not (mask & rain_seen & ~CLUTTER).any()
    assert not (mask & ~CLUTTER).any()


@pytest.mark.parametrize("seed", [1, 2])
def test_fit_is_robust_to_the_sample(seed: int) -> None:
    frames, _ = synthetic_frames(seed=seed, per_month=30)
    mask = fit_clutter_mask(stack_months(monthly_means(frames)), MaskFitParams(seed=seed))
    assert iou(mask, CLUTTER) > 0.8


def test_fit_is_deterministic() -> None:
    frames, _ = synthetic_frames(per_month=20)
    monthly = stack_months(monthly_means(frames))
    np.testing.assert_array_equal(fit_clutter_mask(monthly), fit_clutter_mask(monthly))


def test_no_clutter_gives_an_empty_mask() -> None:
    frames, _ = synthetic_frames(with_clutter=False)
    mask = fit_clutter_mask(stack_months(monthly_means(frames)))
    assert mask.shape == (N, N)
    assert not mask.any()


@pytest.mark.parametrize("value", [0.0, 0.05, 0.7])
def test_constant_fields_give_an_empty_mask(value: float) -> None:
    monthly = np.full((3, 20, 20), value)
    mask = fit_clutter_mask(monthly)
    assert mask.shape == (20, 20)
    assert not mask.any()


def test_weak_blob_below_the_absolute_floor_is_not_clutter() -> None:
    monthly = np.zeros((2, 20, 20))
    monthly[:, 5:8, 5:8] = 0.05  # stands out, but below min_clutter_grey = 0.1
    assert not fit_clutter_mask(monthly).any()
    monthly[:, 5:8, 5:8] = 0.5
    mask = fit_clutter_mask(monthly)
    expected = np.zeros((20, 20), bool)
    expected[5:8, 5:8] = True
    np.testing.assert_array_equal(mask, expected)


def test_single_month_works() -> None:
    frames, _ = synthetic_frames(per_month=40)
    means = monthly_means(frames)
    mask = fit_clutter_mask(means["2026-02"][None])
    assert iou(mask, CLUTTER) > 0.8


# --- mask version ------------------------------------------------------------------------------


def test_mask_version_is_deterministic_and_tracks_content() -> None:
    when = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    v = mask_version(when, CLUTTER)
    assert re.fullmatch(r"m\d{8}T\d{6}Z-[0-9a-f]{8}", v)
    assert v.startswith("m20260301T120005Z-")
    assert mask_version(when, CLUTTER.copy()) == v
    assert mask_version(datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC), CLUTTER) == v
    # different time, different version
    assert mask_version(when + timedelta(seconds=1), CLUTTER) != v
    # one flipped cell, different version
    other = CLUTTER.copy()
    other[0, 0] = True
    assert mask_version(when, other) != v
    # same bits in another shape, different version
    flat = np.zeros(16, bool)
    assert mask_version(when, flat) != mask_version(when, flat.reshape(4, 4))
    # empty masks of different sizes differ too (packbits pads to whole bytes)
    assert mask_version(when, np.zeros((4, 4), bool)) != mask_version(when, np.zeros((3, 5), bool))
