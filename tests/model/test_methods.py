"""Nowcast methods: registry, persistence, Lucas-Kanade + semi-Lagrangian extrapolation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from model.methods import NowcastMethod, get_method, method_names

VELOCITY_CELLS_PER_STEP = (2.0, 1.0)  # (x: columns, y: rows)
START = (30.0, 30.0)
IN_FRAMES = 5


def _blob(cx: float, cy: float, size: int = 100, sigma: float = 6.0) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    return (0.8 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))).astype(np.float32)


def _moving_blob(frames: int = IN_FRAMES, size: int = 100) -> np.ndarray:
    """(frames, size, size) grey: a gaussian blob moving by VELOCITY_CELLS_PER_STEP."""
    u, v = VELOCITY_CELLS_PER_STEP
    return np.stack([_blob(START[0] + u * t, START[1] + v * t, size) for t in range(frames)])


def _expected_centre(lead: int) -> tuple[float, float]:
    u, v = VELOCITY_CELLS_PER_STEP
    steps = IN_FRAMES - 1 + lead
    return START[0] + u * steps, START[1] + v * steps


def _centroid(field: np.ndarray) -> tuple[float, float]:
    y, x = np.mgrid[0 : field.shape[0], 0 : field.shape[1]]
    return float((x * field).sum() / field.sum()), float((y * field).sum() / field.sum())


@pytest.fixture(scope="module")
def blob_forecast() -> np.ndarray:
    return get_method("extrapolation")(_moving_blob()[np.newaxis], 15)


def test_registry_names_and_wrong_name() -> None:
    assert {"persistence", "extrapolation", "convlstm"} <= set(method_names())
    valid = (
        "convlstm, convlstm-probability, eulerian-convlstm, extrapolation, extrapolation-inflow, "
        "fclstm, persistence, saconvlstm, sprog, steps"
    )
    with pytest.raises(ValueError, match=f"valid names: {valid}$"):
        get_method("rover")


def test_persistence_repeats_the_last_frame() -> None:
    rng = np.random.default_rng(0)
    inputs = rng.random((2, 5, 8, 9)).astype(np.float32)
    method = get_method("persistence")
    assert isinstance(method, NowcastMethod)
    assert method.name == "persistence"
    out = method(inputs, 4)
    assert out.shape == (2, 4, 8, 9) and out.dtype == np.float32
    for lead in range(4):
        np.testing.assert_array_equal(out[:, lead], inputs[:, -1])
    out[0, 0, 0, 0] = 5.0
    assert inputs[0, -1, 0, 0] != 5.0  # a copy, not a view
    with pytest.raises(ValueError, match="B, T_in, H, W"):
        method(inputs[0], 4)
    with pytest.raises(ValueError, match="n_leads"):
        method(inputs, 0)


@pytest.mark.parametrize(("lead", "tolerance"), [(1, 1.0), (5, 2.0), (15, 3.0)])
def test_extrapolation_moves_a_blob_at_its_speed(
    blob_forecast: np.ndarray, lead: int, tolerance: float
) -> None:
    x, y = _centroid(blob_forecast[0, lead - 1])
    ex, ey = _expected_centre(lead)
    assert abs(x - ex) <= tolerance
    assert abs(y - ey) <= tolerance


def test_extrapolation_output_shape_dtype_range(blob_forecast: np.ndarray) -> None:
    assert blob_forecast.shape == (1, 15, 100, 100)
    assert blob_forecast.dtype == np.float32
    assert blob_forecast.min() >= 0.0 and blob_forecast.max() <= 1.0
    assert np.isfinite(blob_forecast).all()
    assert blob_forecast[0, 0].max() > 0.7  # the blob is advected, not smeared away


@pytest.mark.parametrize("variant", ["rover2", "rover3"])
def test_extrapolation_variants(variant: str) -> None:
    method = get_method("extrapolation", variant=variant)
    assert method.name == "extrapolation"
    out = method(_moving_blob(size=80)[np.newaxis], 3)
    assert out.shape == (1, 3, 80, 80)
    x, y = _centroid(out[0, 2])
    ex, ey = _expected_centre(3)
    assert abs(x - ex) <= 1.5 and abs(y - ey) <= 1.5


def test_extrapolation_rejects_wrong_variant_and_too_few_frames() -> None:
    with pytest.raises(ValueError, match="rover1, rover2, rover3"):
        get_method("extrapolation", variant="rover4")
    with pytest.raises(ValueError, match="at least 4 input frames"):
        get_method("extrapolation", variant="rover3")(_moving_blob(3)[np.newaxis], 2)


def test_extrapolation_dry_input_gives_zeros_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    dry = np.zeros((2, 5, 40, 40), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = get_method("extrapolation", variant="rover3")(dry, 6)
    assert out.shape == (2, 6, 40, 40) and out.dtype == np.float32
    assert not out.any()
    assert capsys.readouterr().out == ""


def test_extrapolation_batch_of_two_matches_single_calls() -> None:
    moving = _moving_blob(size=60)
    still = np.repeat(_blob(20.0, 40.0, size=60)[np.newaxis], IN_FRAMES, axis=0)
    still[-1] = np.clip(still[-1] * 1.5, 0.0, 1.0)  # brighter than 1 before clipping
    method = get_method("extrapolation")
    batch = method(np.stack([moving, still]), 4)
    assert batch.shape == (2, 4, 60, 60) and batch.dtype == np.float32
    assert batch.min() >= 0.0 and batch.max() <= 1.0
    np.testing.assert_array_equal(batch[0], method(moving[np.newaxis], 4)[0])
    np.testing.assert_array_equal(batch[1], method(still[np.newaxis], 4)[0])
    # the stationary blob stays where it is
    x, y = _centroid(batch[1, -1])
    assert abs(x - 20.0) <= 1.0 and abs(y - 40.0) <= 1.0


def test_extrapolation_prints_nothing_even_on_first_pysteps_import() -> None:
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from model.methods import get_method\n"
        "frames = np.zeros((1, 2, 32, 32), dtype=np.float32)\n"
        "frames[0, 0, 10:16, 10:16] = 0.5\n"
        "frames[0, 1, 11:17, 12:18] = 0.5\n"
        "get_method('extrapolation')(frames, 2)\n"
        "import sys; assert 'pysteps' in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
