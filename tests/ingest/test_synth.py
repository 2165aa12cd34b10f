"""Tests of the synthetic rain generator (`ingest.synth`) and the CF writer (`ingest.cf_writer`)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from ingest.cf_writer import rain_rate_to_dbz, write_cf_frame, write_synthetic_feed
from ingest.synth import (
    SynthParams,
    synth_latent_fields,
    synth_rain_rate_mmh,
    wavenumber_autocorrelation,
)

SMALL = SynthParams(shape=(128, 128))
VALID = datetime(2026, 3, 4, 5, 6, 0, tzinfo=UTC)


def _frames(n: int, params: SynthParams = SMALL, seed: int = 0) -> list[np.ndarray]:
    return list(synth_rain_rate_mmh(n, params, seed))


def _displacement_px(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """(rows, cols) shift that best maps `a` onto `b` (peak of the FFT cross-correlation)."""
    fa = np.fft.fft2(a - a.mean())
    fb = np.fft.fft2(b - b.mean())
    xcorr = np.fft.ifft2(fb * np.conj(fa)).real
    rows, cols = np.unravel_index(int(np.argmax(xcorr)), xcorr.shape)
    ny, nx = a.shape
    return (int(rows) - ny if rows > ny // 2 else int(rows)), (
        int(cols) - nx if cols > nx // 2 else int(cols)
    )


def _spectral_slope(field: np.ndarray, k_min: float, k_max: float) -> float:
    """Slope of log(radially averaged 2-D PSD) vs log|k| over k_min..k_max cycles/pixel."""
    ny, nx = field.shape
    psd = np.abs(np.fft.fft2(field - field.mean())) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(ny), np.fft.fftfreq(nx), indexing="ij"))
    edges = np.geomspace(k_min, k_max, 12)
    centres, means = [], []
    for lo, hi in itertools.pairwise(edges):
        ring = (k >= lo) & (k < hi)
        centres.append(np.sqrt(lo * hi))
        means.append(psd[ring].mean())
    return float(np.polyfit(np.log(centres), np.log(means), 1)[0])


def test_deterministic_for_a_seed() -> None:
    a, b, c = _frames(4), _frames(4), _frames(4, seed=1)
    for fa, fb in zip(a, b, strict=True):
        np.testing.assert_array_equal(fa, fb)
    assert not np.array_equal(a[-1], c[-1])


def test_shape_dtype_finite_non_negative() -> None:
    params = SynthParams(shape=(96, 128))
    frames = _frames(5, params)
    assert len(frames) == 5
    for rain in frames:
        assert rain.shape == (96, 128)
        assert rain.dtype == np.float32
        assert np.isfinite(rain).all()
        assert (rain >= 0).all()
        wet = rain[rain > 0]
        assert wet.min() >= 0.099  # the weakest rain is ~0.1 mm/h


def test_rain_rates_span_light_to_heavy() -> None:
    rain = np.concatenate([f[f > 0] for f in _frames(10, SynthParams(shape=(256, 256)))])
    assert 0.3 < np.median(rain) < 3.0
    assert np.percentile(rain, 99.9) > 15.0  # heavy tail
    assert rain.max() < 1000.0


def test_intermittency_matches_wet_fraction() -> None:
    steady = replace(SMALL, cycle_wet_fraction_rel=0.0, wet_fraction=0.25)
    for rain in _frames(3, steady):
        assert np.mean(rain == 0) == pytest.approx(0.75, abs=0.01)
    # with the growth/decay cycle, over a whole period (3 h = 30 frames) it averages out
    dry = [np.mean(r == 0) for r in _frames(30, SMALL)]
    assert np.mean(dry) == pytest.approx(1.0 - SMALL.wet_fraction, abs=0.02)


def test_field_moves_with_the_velocity() -> None:
    params = replace(SMALL, velocity_kmh=(30.0, 20.0), rotation_deg_per_h=0.0, pixel_km=2.0)
    frames = list(synth_latent_fields(6, params, seed=3))
    step_h = params.cadence_min / 60.0
    expected_cols = params.velocity_kmh[0] * step_h / params.pixel_km  # 1.5 px east
    expected_rows = -params.velocity_kmh[1] * step_h / params.pixel_km  # 1 px north = up
    for a, b in itertools.pairwise(frames):
        rows, cols = _displacement_px(a, b)
        assert abs(rows - expected_rows) <= 1.0
        assert abs(cols - expected_cols) <= 1.0
    # the rain field too, over several steps (default 30, 10 km/h -> 3, -1 px per frame)
    rain = _frames(4)
    rows, cols = _displacement_px(np.log1p(rain[0]), np.log1p(rain[3]))
    assert abs(cols - 9) <= 2 and abs(rows + 3) <= 2


def test_power_spectrum_slope_is_realistic() -> None:
    params = SynthParams(shape=(256, 256))
    latent = next(synth_latent_fields(1, params, seed=5))
    slope = _spectral_slope(latent, 1.0 / 32.0, 0.25)  # scales 4-32 km
    assert -3.5 < slope < -2.5
    rain = next(synth_rain_rate_mmh(1, params, seed=5))
    log_rain_slope = _spectral_slope(np.log10(np.maximum(rain, 0.05)), 1.0 / 32.0, 0.25)
    assert -3.8 < log_rain_slope < -1.5


def test_small_scales_decorrelate_faster() -> None:
    rho = wavenumber_autocorrelation(SMALL)
    assert rho[0, 1] > 0.9 and rho[0, -1] < 0.6
    assert np.all(np.diff(rho[0, 1:]) <= 1e-12)  # along kx, monotone down
    frames = list(synth_latent_fields(2, replace(SMALL, velocity_kmh=(0.0, 0.0)), seed=2))
    assert 0.5 < np.corrcoef(frames[0].ravel(), frames[1].ravel())[0, 1] < 0.999


def test_rain_grows_and_decays() -> None:
    wet = np.array([np.mean(r > 0) for r in _frames(31, SMALL)])
    mean_rain = np.array([r.mean() for r in _frames(31, SMALL)])
    assert wet.max() - wet.min() > 0.2  # 0.15 .. 0.45 over the 3 h cycle
    assert wet.argmax() < wet.argmin()  # grows first, then decays
    assert mean_rain.max() > 3.0 * mean_rain.min()


@pytest.mark.parametrize(
    ("quantity", "name", "standard_name", "units", "tolerance"),
    [
        ("rain_rate", "rainfall_rate", "rainfall_rate", "mm h-1", 0.0051),
        ("reflectivity", "reflectivity", "equivalent_reflectivity_factor", "dBZ", 0.0051),
    ],
)
def test_write_cf_frame_reads_back(
    tmp_path: Path, quantity: str, name: str, standard_name: str, units: str, tolerance: float
) -> None:
    rain = next(synth_rain_rate_mmh(1, SynthParams(shape=(40, 48))))
    field = rain if quantity == "rain_rate" else rain_rate_to_dbz(rain)
    field[3, 4] = np.nan
    path = tmp_path / "frame.nc"
    write_cf_frame(path, field, VALID, "site-a", quantity, pixel_km=2.0)
    assert [p.name for p in tmp_path.iterdir()] == ["frame.nc"]  # no temporary file left
    with xr.open_dataset(path, engine="netcdf4") as ds:
        var = ds[name]
        assert var.dims == ("time", "y", "x")
        assert var.attrs["standard_name"] == standard_name
        assert var.attrs["units"] == units
        assert var.encoding["dtype"] == np.int16
        np.testing.assert_allclose(var.values[0], field, atol=tolerance, equal_nan=True)
        assert np.isnan(var.values[0, 3, 4])
        assert ds["time"].attrs["standard_name"] == "time"
        assert ds["time"].encoding["units"] == "seconds since 1970-01-01 00:00:00"
        assert ds["time"].attrs["axis"] == "T"
        assert ds["time"].values[0] == np.datetime64("2026-03-04T05:06:00")
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert ds.attrs["site_id"] == "site-a"
        assert ds.attrs["source"] == "nowcast synthetic radar feed"
        assert ds["x"].attrs["units"] == "km" and ds["y"].attrs["units"] == "km"
        assert ds["y"].attrs["standard_name"] == "projection_y_coordinate"
        assert ds["x"].attrs["standard_name"] == "projection_x_coordinate"
        assert ds["x"].values.mean() == pytest.approx(0.0)
        assert ds["y"].values.mean() == pytest.approx(0.0)
        assert np.all(np.diff(ds["y"].values) == -2.0)
        assert np.all(np.diff(ds["x"].values) == 2.0)


def test_write_cf_accumulation_reads_back(tmp_path: Path) -> None:
    depth_mm = next(synth_rain_rate_mmh(1, SynthParams(shape=(32, 32)))) * np.float32(0.25)
    depth_mm[0, 0] = np.nan
    path = tmp_path / "acc.nc"
    write_cf_frame(path, depth_mm, VALID, "site-b", "accumulation", accumulation_min=15.0)
    with xr.open_dataset(path, engine="netcdf4") as ds:
        var = ds["precipitation"]
        assert var.dims == ("y", "x")
        assert var.attrs["standard_name"] == "precipitation_amount"
        assert var.attrs["units"] == "kg m-2"
        np.testing.assert_allclose(var.values, depth_mm, rtol=1e-6, equal_nan=True)
        assert ds["valid_time"].attrs["standard_name"] == "time"
        assert ds["valid_time"].values == np.datetime64("2026-03-04T05:06:00")
        assert ds["start_time"].values == np.datetime64("2026-03-04T04:51:00")
    with pytest.raises(ValueError, match="accumulation_min"):
        write_cf_frame(tmp_path / "bad.nc", depth_mm, VALID, "site-b", "accumulation")


def test_write_cf_frame_rejects_naive_time_and_unknown_quantity(tmp_path: Path) -> None:
    field = np.zeros((8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="timezone"):
        write_cf_frame(tmp_path / "a.nc", field, datetime(2026, 1, 1), "s", "rain_rate")
    with pytest.raises(ValueError, match="unknown quantity"):
        write_cf_frame(tmp_path / "b.nc", field, VALID, "s", "snow")
    assert list(tmp_path.iterdir()) == []


def test_rain_rate_to_dbz_marshall_palmer() -> None:
    dbz = rain_rate_to_dbz(np.array([0.0, 1.0, 10.0, np.nan]))
    assert dbz[0] == -32.0
    assert dbz[1] == pytest.approx(10 * np.log10(200.0), abs=1e-4)
    assert dbz[2] == pytest.approx(10 * np.log10(200.0) + 16.0, abs=1e-4)
    assert np.isnan(dbz[3])


@pytest.mark.parametrize("quantity", ["rain_rate", "reflectivity", "accumulation"])
def test_write_synthetic_feed(tmp_path: Path, quantity: str) -> None:
    paths = write_synthetic_feed(
        tmp_path, 4, cadence_min=5.0, site_id="synth-07", quantity=quantity, shape=(32, 40)
    )
    assert len(paths) == 4
    assert [p.name for p in paths] == [
        "synth-07_20260101T000000Z.nc",
        "synth-07_20260101T000500Z.nc",
        "synth-07_20260101T001000Z.nc",
        "synth-07_20260101T001500Z.nc",
    ]
    assert sorted(tmp_path.iterdir()) == paths
    expected = list(synth_rain_rate_mmh(4, SynthParams(shape=(32, 40), cadence_min=5.0)))
    times = []
    for path, rain in zip(paths, expected, strict=True):
        with xr.open_dataset(path, engine="netcdf4") as ds:
            if quantity == "accumulation":
                times.append(ds["valid_time"].values)
                start = ds["start_time"].values
                assert ds["valid_time"].values - start == np.timedelta64(5, "m")
                np.testing.assert_allclose(ds["precipitation"].values, rain * 5.0 / 60.0, rtol=1e-6)
            else:
                times.append(ds["time"].values[0])
                name = "rainfall_rate" if quantity == "rain_rate" else "reflectivity"
                want = rain if quantity == "rain_rate" else rain_rate_to_dbz(rain)
                np.testing.assert_allclose(ds[name].values[0], want, atol=0.0051)
            assert ds.attrs["site_id"] == "synth-07"
    steps = np.diff(np.array(times)).astype("timedelta64[s]").astype(int)
    assert list(steps) == [300, 300, 300]
    later = datetime(2026, 6, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=3)
    again = write_synthetic_feed(tmp_path / "b", 1, start=later, shape=(16, 16))
    assert again[0].name == "synth-01_20260601T120300Z.nc"
