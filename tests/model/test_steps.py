"""STEPS (pysteps): a seeded ensemble that spreads with lead, around the shared motion field;
its mean is taken as rain rates; nothing to model gives the extrapolation in every member."""

from __future__ import annotations

import numpy as np
import pytest

from core.conversion import grey_to_rain_rate_mmh
from model.advection.motion import advect_grey, motion_field
from model.methods import NowcastMethod, get_method, method_names
from model.methods.steps import StepsMethod, ensemble_mean_grey
from tests.model.test_sprog import N_LEADS, _moving_blob

MEMBERS = 6


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    rng = np.random.default_rng(0)
    frames = _moving_blob() + 0.05 * rng.random((5, 100, 100)).astype(np.float32)
    return np.clip(frames, 0, 1)[None]  # (1, 5, 100, 100)


@pytest.fixture(scope="module")
def members(inputs: np.ndarray) -> np.ndarray:
    return StepsMethod(n_members=MEMBERS).ensemble(inputs, N_LEADS)


def test_steps_is_registered_with_its_defaults():
    assert "steps" in method_names()
    method = get_method("steps")
    assert isinstance(method, NowcastMethod) and isinstance(method, StepsMethod)
    assert method.n_members == 20 and method.noise == "nonparametric" and method.perturb_motion
    with pytest.raises(ValueError, match="n_members"):
        StepsMethod(n_members=1)
    for noise in ("brownian", "parametric"):  # pysteps' parametric fit fails on 100 cells
        with pytest.raises(ValueError, match="noise"):
            StepsMethod(noise=noise)


def test_members_are_seeded_and_spread_with_lead(inputs: np.ndarray, members: np.ndarray):
    assert members.shape == (1, MEMBERS, N_LEADS, 100, 100) and members.dtype == np.float32
    assert members.min() >= 0.0 and members.max() <= 1.0
    again = StepsMethod(n_members=MEMBERS).ensemble(inputs, N_LEADS)
    np.testing.assert_array_equal(members, again)  # same seed, same members
    other = StepsMethod(n_members=MEMBERS, seed=7).ensemble(inputs, N_LEADS)
    assert not np.array_equal(members, other)
    spread = members[0].std(axis=0).mean(axis=(1, 2))  # per lead
    assert spread[0] > 0 and spread[-1] > 1.5 * spread[0]


def test_the_mean_is_taken_as_rain_rates(inputs: np.ndarray, members: np.ndarray):
    mean = StepsMethod(n_members=MEMBERS)(inputs, N_LEADS)
    np.testing.assert_allclose(mean, ensemble_mean_grey(members), atol=1e-6)
    rain = grey_to_rain_rate_mmh(members, -10.0, 70.0).mean(axis=1)
    # the same to 0.01 mm/h: a mean under -10 dBZ (0.007 mm/h) is the grey scale's floor, 0
    np.testing.assert_allclose(grey_to_rain_rate_mmh(mean, -10.0, 70.0), rain, rtol=1e-4, atol=0.01)
    # averaging rain rates keeps the rain area that averaging grey levels (dBZ) would shrink
    wet = rain >= 0.5
    assert wet.sum() >= (grey_to_rain_rate_mmh(members.mean(axis=1), -10.0, 70.0) >= 0.5).sum()


def test_the_ensemble_follows_the_shared_motion_field(inputs: np.ndarray, members: np.ndarray):
    """The members' mean stays on the extrapolation's track (same motion field; the members'
    motion perturbations scatter it by a fraction of the way travelled)."""
    frames = inputs[0].astype(np.float64)
    extrapolated = advect_grey(frames[-1], motion_field(frames, "rover1"), N_LEADS)

    def centroid(field: np.ndarray) -> np.ndarray:
        y, x = np.mgrid[0 : field.shape[0], 0 : field.shape[1]]
        w = np.clip(field - 0.2, 0, None)
        return np.array([(x * w).sum() / w.sum(), (y * w).sum() / w.sum()])

    mean = ensemble_mean_grey(members)[0]
    start = centroid(frames[-1])
    for lead in (1, N_LEADS):
        travelled = np.linalg.norm(centroid(extrapolated[lead - 1]) - start)
        distance = np.linalg.norm(centroid(mean[lead - 1]) - centroid(extrapolated[lead - 1]))
        assert distance < 1.0 + 0.25 * travelled, (lead, distance, travelled)
    assert travelled > 10.0  # the blob did move


def test_no_rain_gives_the_extrapolation_in_every_member():
    dry = np.zeros((1, 5, 40, 40), np.float32)
    out = StepsMethod(n_members=3).ensemble(dry, 4)
    assert out.shape == (1, 3, 4, 40, 40) and not out.any()
