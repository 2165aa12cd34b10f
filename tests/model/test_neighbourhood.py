"""Probabilities from the learned model (model.methods.neighbourhood): the served ConvLSTM's
forecast read as a neighbourhood ensemble whose square widens with lead."""

from __future__ import annotations

import numpy as np
import pytest

from model.methods import ProbabilisticMethod, get_method, probabilistic_names
from model.methods.neighbourhood import RADIUS_PER_LEAD_CELLS, neighbourhood_probabilities


def test_one_wet_cell_spreads_over_a_square_that_widens_with_lead():
    rain = np.zeros((1, 3, 21, 21), np.float32)
    rain[0, :, 10, 10] = 3.0
    p = neighbourhood_probabilities(rain, (0.5, 5.0), radius_per_lead=1.0)
    assert p.shape == (1, 3, 2, 21, 21)
    for k in range(3):
        size = 2 * (k + 1) + 1
        wet = p[0, k, 0] > 0
        assert wet.sum() == size * size  # the square around the cell
        np.testing.assert_allclose(p[0, k, 0][wet], 1.0 / (size * size), rtol=1e-6)
    assert not p[:, :, 1].any()  # nothing reaches 5 mm/h
    # radius 0: the forecast itself, as 0 or 1
    same = neighbourhood_probabilities(rain, (0.5,), radius_per_lead=0.0)[0, :, 0]
    np.testing.assert_array_equal(same, (rain[0] >= 0.5).astype(np.float32))


def test_the_method_serves_the_networks_forecast_with_its_probabilities():
    assert "convlstm-probability" in probabilistic_names()
    method = get_method("convlstm-probability")
    assert (
        isinstance(method, ProbabilisticMethod) and method.radius_per_lead == RADIUS_PER_LEAD_CELLS
    )
    rng = np.random.default_rng(1)
    inputs = (rng.random((1, 5, 100, 100)) * 0.8).astype(np.float32)
    grey, probability = method.probabilities(inputs, 15, (0.5, 2.0), (-10.0, 70.0), (200.0, 1.6))
    np.testing.assert_allclose(grey, get_method("convlstm")(inputs, 15), atol=1e-6)
    assert probability.shape == (1, 15, 2, 100, 100)
    assert probability.min() >= 0 and probability.max() <= 1
    assert (probability[:, :, 1] <= probability[:, :, 0] + 1e-6).all()
    with pytest.raises(ValueError, match="radius_per_lead"):
        get_method("convlstm-probability", radius_per_lead=-1.0)
