"""S-PROG (pysteps): shape and range, no echo, motion (the shared field), determinism."""

from __future__ import annotations

import numpy as np
import pytest

import model.advection.motion
import model.methods.sprog as sprog_module
from core.conversion import dbz_to_grey, rain_rate_mmh_to_dbz
from ingest.normalize import NormParams
from model.methods import NowcastMethod, get_method, method_names
from model.methods.sprog import RAIN_THRESHOLD_GREY, SprogMethod, octave_levels

VELOCITY_CELLS_PER_STEP = (2.0, 1.0)  # (x: columns, y: rows)
START = (30.0, 30.0)
IN_FRAMES = 5
N_LEADS = 10


def _blob(cx: float, cy: float, size: int = 100, sigma: float = 6.0) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    return (0.8 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))).astype(np.float32)


def _moving_blob(start: tuple[float, float] = START) -> np.ndarray:
    """(IN_FRAMES, 100, 100) grey: a gaussian blob moving by VELOCITY_CELLS_PER_STEP."""
    u, v = VELOCITY_CELLS_PER_STEP
    return np.stack([_blob(start[0] + u * t, start[1] + v * t) for t in range(IN_FRAMES)])


def _centroid(field: np.ndarray) -> tuple[float, float]:
    y, x = np.mgrid[0 : field.shape[0], 0 : field.shape[1]]
    return float((x * field).sum() / field.sum()), float((y * field).sum() / field.sum())


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return np.stack([_moving_blob(), _moving_blob((40.0, 20.0))])  # (2, 5, 100, 100)


@pytest.fixture(scope="module")
def forecast(inputs: np.ndarray) -> np.ndarray:
    return get_method("sprog")(inputs, N_LEADS)


def test_sprog_is_registered_with_its_defaults() -> None:
    assert "sprog" in method_names()
    method = get_method("sprog")
    assert isinstance(method, NowcastMethod) and method.name == "sprog"
    assert isinstance(method, SprogMethod)
    assert method.ar_order == 2 and method.probmatching == "cdf" and method.variant == "rover1"
    assert octave_levels(100, 100) == 5 and octave_levels(32, 32) == 4  # one octave per level
    # 0.1 mm/h: Z = 200 R^1.6 is 7.0 dBZ, grey (7.0 + 10) / 80 with the paper's bounds
    grey = float(dbz_to_grey(rain_rate_mmh_to_dbz(0.1), NormParams().dbz_min, NormParams().dbz_max))
    assert abs(RAIN_THRESHOLD_GREY - grey) < 1e-6 and abs(grey - 0.2126) < 1e-4


def test_output_shape_dtype_and_range(inputs: np.ndarray, forecast: np.ndarray) -> None:
    assert forecast.shape == (2, N_LEADS, 100, 100) and forecast.dtype == np.float32
    assert np.isfinite(forecast).all()
    assert forecast.min() >= 0.0 and forecast.max() <= 1.0
    assert forecast[:, 0].max() > RAIN_THRESHOLD_GREY  # the rain is still there


def test_the_blob_moves_in_the_direction_of_motion(forecast: np.ndarray) -> None:
    last_x, last_y = _centroid(_moving_blob()[-1])
    u, v = VELOCITY_CELLS_PER_STEP
    for lead, tolerance in ((1, 1.0), (N_LEADS, 2.0)):
        x, y = _centroid(forecast[0, lead - 1])
        assert abs(x - (last_x + u * lead)) <= tolerance, (lead, x)
        assert abs(y - (last_y + v * lead)) <= tolerance, (lead, y)


def test_no_echo_gives_zeros() -> None:
    out = get_method("sprog")(np.zeros((1, IN_FRAMES, 40, 40), dtype=np.float32), 4)
    assert out.shape == (1, 4, 40, 40) and not out.any()


def test_zero_motion_and_rain_appearing_do_not_crash() -> None:
    method = get_method("sprog")
    still = np.repeat(_blob(50.0, 50.0)[np.newaxis, np.newaxis], IN_FRAMES, axis=1)
    out = method(still, 3)
    assert _centroid(out[0, 2]) == pytest.approx((50.0, 50.0), abs=0.5)
    appearing = np.zeros_like(still)
    appearing[0, -1] = _blob(50.0, 50.0)  # rain in the last frame only: persistence
    np.testing.assert_allclose(method(appearing, 3)[0], np.repeat(appearing[:, -1], 3, axis=0))
    with_nan = _moving_blob()[np.newaxis].copy()
    with_nan[..., :5] = np.nan  # outside coverage reads as no echo
    assert np.isfinite(method(with_nan, 3)).all()


def test_sprog_and_extrapolation_move_rain_by_the_one_shared_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # neither method holds a motion function of its own: both go through model.advection.motion
    assert getattr(sprog_module, "motion_field", model.advection.motion.motion_field) is (
        model.advection.motion.motion_field
    )
    u, v = 3.0, -2.0
    frames = np.stack([_blob(30.0 + u * t, 60.0 + v * t) for t in range(IN_FRAMES)])[np.newaxis]
    last_x, last_y = _centroid(frames[0, -1])
    field = np.zeros((2, 100, 100))
    calls: list[str] = []

    def fixed_field(frames_grey: np.ndarray, variant: str = "rover1") -> np.ndarray:
        calls.append(variant)
        return field

    monkeypatch.setattr(model.advection.motion, "motion_field", fixed_field)
    field[0], field[1] = u, v  # the blob's own motion
    sprog = get_method("sprog")(frames, 1)[0, 0]
    assert calls == ["rover1"]  # once per nowcast: no Lucas-Kanade of its own
    extrapolated = get_method("extrapolation")(frames, 1)[0, 0]
    assert _centroid(sprog) == pytest.approx((last_x + u, last_y + v), abs=0.5)
    assert _centroid(sprog) == pytest.approx(_centroid(extrapolated), abs=0.1)
    field[:] = 0.0  # told there is no motion, S-PROG does not move the blob by its own
    still_x, _ = _centroid(get_method("sprog")(frames, 1)[0, 0])
    assert still_x < last_x + u / 2


def test_deterministic(inputs: np.ndarray, forecast: np.ndarray) -> None:
    np.testing.assert_array_equal(get_method("sprog")(inputs, N_LEADS), forecast)


def test_bad_options_and_too_few_frames() -> None:
    with pytest.raises(ValueError, match="probmatching"):
        get_method("sprog", probmatching="quantile")
    with pytest.raises(ValueError, match="n_cascade_levels"):
        get_method("sprog", n_cascade_levels=0)
    with pytest.raises(ValueError, match="unknown motion variant"):
        get_method("sprog", variant="rover9")
    with pytest.raises(ValueError, match="at least 3 input frames"):
        get_method("sprog")(np.zeros((1, 2, 20, 20), dtype=np.float32), 2)
