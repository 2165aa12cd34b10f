"""Issue-time regimes (model.verification.issue_regimes): each forecast's regime read from its
own inputs, one registry of families."""

from __future__ import annotations

import numpy as np
import pytest

from model.verification.issue_regimes import (
    get_regime,
    issue_time_wet_fraction,
    labels_by_regime,
    new_echo_fraction,
    regimes,
)

BOUNDS, ZR = (-10.0, 70.0), (200.0, 1.6)
WET_GREY = 0.5  # 30 dBZ, about 2.7 mm/h


def test_new_echoes_are_wet_cells_beyond_the_reach_of_the_first_inputs_rain():
    inputs = np.zeros((4, 5, 40, 40), dtype=np.float32)
    # 0: a band that moved 3 cells between the first and last input: nothing new
    inputs[0, 0, 10:14, 5:20] = WET_GREY
    inputs[0, -1, 13:17, 5:20] = WET_GREY
    # 1: the same band, and a cell forming 20 cells away from any earlier rain
    inputs[1] = inputs[0]
    inputs[1, -1, 35, 35] = WET_GREY
    # 2: rain where the first input was dry: all of it new; a middle input does not count
    inputs[2, -1, :2, :] = WET_GREY
    inputs[2, 2, :2, :] = WET_GREY
    # 3: wet first input, dry last input, light rain far away (below 0.5 mm/h): nothing new
    inputs[3, 0, :5, :5] = WET_GREY
    inputs[3, -1, 30:, 30:] = 0.1  # 2 dBZ
    np.testing.assert_allclose(new_echo_fraction(inputs, BOUNDS, ZR), [0, 1 / 1600, 0.05, 0])
    assert get_regime("new-echoes").of(inputs, BOUNDS, ZR) == [
        "quiet",
        "initiating",
        "initiating",
        "quiet",
    ]


def test_cells_outside_coverage_are_neither_wet_nor_counted():
    inputs = np.full((2, 5, 10, 10), np.nan, dtype=np.float32)
    inputs[0, :, :5] = 0.0
    inputs[0, -1, 0, :5] = WET_GREY  # 5 of the 50 covered cells
    np.testing.assert_allclose(issue_time_wet_fraction(inputs, BOUNDS, ZR), [0.1, 0.0])
    assert get_regime("wet-fraction").of(inputs, BOUNDS, ZR) == ["wet", "dry"]
    np.testing.assert_allclose(new_echo_fraction(inputs, BOUNDS, ZR), [0.05, 0.0])


def test_the_registry_names_every_family_and_refuses_unknown_ones():
    inputs = np.zeros((3, 5, 10, 10), dtype=np.float32)
    labels = labels_by_regime(inputs, BOUNDS, ZR)
    assert set(labels) == set(regimes()) == {"wet-fraction", "new-echoes"}
    assert labels["wet-fraction"] == ["dry"] * 3 and labels["new-echoes"] == ["quiet"] * 3
    with pytest.raises(ValueError, match="known: wet-fraction, new-echoes"):
        get_regime("moon-phase")
    family = get_regime("new-echoes")
    family.check_parameters(dict(family.parameters), "here")
    with pytest.raises(ValueError, match="fit the calibration again"):
        family.check_parameters({"wet_mmh": 0.5}, "here")
