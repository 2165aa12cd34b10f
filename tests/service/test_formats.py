"""Forecast files (service.formats): CF-NetCDF read back by xarray and checked by the IOOS
compliance checker, PNG strips and GIF animations decoded by pillow.

The forecasts are built here: a Gaussian blob of rain (peak grey 0.7, about 27 mm/h) moving
4 cells east per lead on a 100 x 100 grid. Expected times are written out by hand, not taken
from the code under test.
"""

from __future__ import annotations

import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr
from PIL import Image, ImageSequence

from service.forecast import Forecast, RainConversion
from service.formats.netcdf import FILL_VALUE, forecast_to_netcdf
from service.formats.png import (
    GIF_FRAME_MS,
    GIF_SCALE,
    LABEL_PX,
    LEFT_PX,
    PANEL_PX,
    TITLE_PX,
    forecast_animation_gif,
    forecast_strip_png,
    rain_rgb,
    strip_size_px,
)

ISSUE = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
GRID = 100
N_LEADS = 15
BLOB_ROW = 50
WHITE = (255, 255, 255)


def blob_col(lead: int) -> int:
    """Column of the blob's centre at a 1-based lead."""
    return 16 + 4 * lead


def blob_grey(centres: list[tuple[int, int]], peak: float = 0.7) -> np.ndarray:
    """(len(centres), GRID, GRID) float32 grey: one Gaussian blob (sigma 5 cells) per frame."""
    rows, cols = np.mgrid[0:GRID, 0:GRID]
    frames = [peak * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 50.0) for r, c in centres]
    return np.stack(frames).astype(np.float32)


def make_forecast(grey: np.ndarray | None = None, issue_time: datetime = ISSUE) -> Forecast:
    if grey is None:
        grey = blob_grey([(BLOB_ROW, blob_col(k)) for k in range(1, N_LEADS + 1)])
    return Forecast(
        site_id="melb-2",
        method="convlstm",
        issue_time=issue_time,
        cadence_min=6.0,
        grey=grey,
        model_version="ckpt-3f2a9c",
        norm_version="norm-v1",
        conversion=RainConversion(dbz_min=-10.0, dbz_max=70.0, zr_a=200.0, zr_b=1.6),
        created_at=issue_time + timedelta(seconds=40),
    )


# --- NetCDF ------------------------------------------------------------------------------------


@pytest.fixture
def nc_path(tmp_path: Path) -> Path:
    path = tmp_path / "forecast.nc"
    path.write_bytes(forecast_to_netcdf(make_forecast()))
    return path


def test_netcdf_rain_rates_equal_the_forecast(nc_path: Path) -> None:
    forecast = make_forecast()
    with xr.open_dataset(nc_path, decode_timedelta=True) as ds:
        rain = ds["rainfall_rate"]
        assert rain.dims == ("time", "y", "x")
        assert rain.dtype == np.float32
        assert rain.attrs["standard_name"] == "rainfall_rate"
        assert rain.attrs["units"] == "mm h-1"
        np.testing.assert_array_equal(rain.values, forecast.rain_mmh())
        assert float(rain.max()) == pytest.approx(27.3, abs=0.1)  # grey 0.7 = 46 dBZ
        assert float(rain.isel(time=0, y=BLOB_ROW, x=blob_col(1))) == float(rain.max())
        np.testing.assert_array_equal(ds["y"].values, np.arange(GRID))
        np.testing.assert_array_equal(ds["x"].values, np.arange(GRID))


def test_netcdf_times_and_leads(nc_path: Path) -> None:
    leads = np.arange(1, N_LEADS + 1)
    expected_valid = np.datetime64("2026-03-04T05:06", "ns") + leads * np.timedelta64(6, "m")
    with xr.open_dataset(nc_path, decode_timedelta=True) as ds:
        np.testing.assert_array_equal(ds["time"].values, expected_valid)
        assert ds["time"].values[-1] == np.datetime64("2026-03-04T06:36", "ns")  # +90 min
        assert ds["forecast_reference_time"].values == np.datetime64("2026-03-04T05:06", "ns")
        np.testing.assert_array_equal(ds["forecast_period"].values, leads * np.timedelta64(6, "m"))
        assert ds["forecast_period"].dims == ("time",)
        assert set(ds["rainfall_rate"].coords) == {
            "time",
            "y",
            "x",
            "forecast_period",
            "forecast_reference_time",
        }


def test_netcdf_times_are_utc_whatever_the_issue_time_zone(tmp_path: Path) -> None:
    melbourne = timezone(timedelta(hours=11))
    forecast = make_forecast(issue_time=datetime(2026, 3, 4, 16, 6, tzinfo=melbourne))
    path = tmp_path / "f.nc"
    path.write_bytes(forecast_to_netcdf(forecast))
    with xr.open_dataset(path) as ds:
        assert ds["forecast_reference_time"].values == np.datetime64("2026-03-04T05:06", "ns")
        assert ds["time"].values[0] == np.datetime64("2026-03-04T05:12", "ns")


def test_netcdf_raw_encoding_and_attributes(nc_path: Path) -> None:
    with netCDF4.Dataset(nc_path) as nc:
        assert nc.data_model == "NETCDF4"
        assert nc.Conventions == "CF-1.8, ACDD-1.3"
        assert (nc.site_id, nc.method) == ("melb-2", "convlstm")
        assert (nc.model_version, nc.norm_version) == ("ckpt-3f2a9c", "norm-v1")
        assert "arXiv:1506.04214" in nc.references
        assert "melb-2" in nc.title
        for name in ("institution", "source", "history"):
            assert getattr(nc, name)
        rain = nc["rainfall_rate"]
        assert rain.filters()["zlib"] is True
        assert rain.dtype == np.float32
        assert rain._FillValue == FILL_VALUE
        assert rain.coordinates == "forecast_period forecast_reference_time"
        assert rain.cell_methods == "time: point"
        assert nc["time"].units == "seconds since 1970-01-01 00:00:00 UTC"
        assert nc["time"].standard_name == "time"
        assert nc["time"][:][0] == (ISSUE + timedelta(minutes=6)).timestamp()
        assert nc["forecast_reference_time"].standard_name == "forecast_reference_time"
        assert nc["forecast_period"].standard_name == "forecast_period"
        assert nc["forecast_period"].units == "minutes"
        assert list(nc["forecast_period"][:]) == [6.0 * k for k in range(1, N_LEADS + 1)]
    assert nc_path.stat().st_size < 0.2 * N_LEADS * GRID * GRID * 4  # compressed


def test_netcdf_nan_is_written_as_fill_value(tmp_path: Path) -> None:
    grey = blob_grey([(50, 50), (50, 54)])
    grey[1, :10, :10] = np.nan
    path = tmp_path / "f.nc"
    path.write_bytes(forecast_to_netcdf(make_forecast(grey)))
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_mask(False)
        assert (nc["rainfall_rate"][1, :10, :10] == FILL_VALUE).all()
    with xr.open_dataset(path) as ds:
        rain = ds["rainfall_rate"].values
    assert np.isnan(rain[1, :10, :10]).all()
    assert np.isfinite(rain[0]).all() and np.isfinite(rain[1, 10:]).all()


# The one medium finding accepted: CF 2.4 recommends dimension order T, Z, Y, X, and the checker
# knows Y and X only as latitude/longitude or projection coordinates. The normalised grid has no
# georeference and no cell size, so y and x are index coordinates (units "1", no axis: axis Y/X
# would declare latitude/longitude and fail CF 4.1/4.2) and the checker guesses them "U".
ACCEPTED_MEDIUM = (
    "§2.4",
    "The dimensions (and their guessed types) are time (T), y (U), x (U)",
)


def test_netcdf_is_cf_1_8_clean(nc_path: Path) -> None:
    from compliance_checker.base import BaseCheck, Result
    from compliance_checker.runner import CheckSuite

    with warnings.catch_warnings():  # loading the IOOS SOS checker warns it is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        CheckSuite.load_all_available_checkers()
    suite = CheckSuite()
    assert "cf:1.8" in suite.checkers
    # no standard_name_vocabulary attribute: the checker uses the table it ships (no network)
    ds = suite.load_dataset(str(nc_path))
    try:
        groups, errors = suite.run_all(ds, ["cf:1.8"], skip_checks=[])["cf:1.8"]
    finally:
        ds.close()
    assert errors == {}, f"checks that crashed: {errors}"
    assert len(groups) > 20  # the CF checks ran

    def failed(result: Result) -> bool:
        value = result.value
        return value[0] < value[1] if isinstance(value, tuple) else not value

    high = [(g.name, g.msgs) for g in groups if g.weight == BaseCheck.HIGH and failed(g)]
    medium = [(g.name, g.msgs) for g in groups if g.weight == BaseCheck.MEDIUM and failed(g)]
    assert high == []
    unexpected = [
        (name, msgs)
        for name, msgs in medium
        if not (name.startswith(ACCEPTED_MEDIUM[0]) and all(ACCEPTED_MEDIUM[1] in m for m in msgs))
    ]
    assert unexpected == []


# --- PNG strip ---------------------------------------------------------------------------------


def panel_pixel(row: int, col: int, lead_slot: int, strip_row: int = 0) -> tuple[int, int]:
    """(x, y) image pixel of grid cell (row, col) in the panel at ``lead_slot`` (0-based)."""
    gap = 4
    side = PANEL_PX - 2 * gap  # the square map inside a panel
    x = LEFT_PX + lead_slot * PANEL_PX + gap + (col + 0.5) * side / GRID
    y = TITLE_PX + strip_row * (PANEL_PX + LABEL_PX) + gap + (row + 0.5) * side / GRID
    return int(x), int(y)


def close_to(pixel: object, rgb: np.ndarray, tolerance: int = 12) -> bool:
    """An RGB pixel (as ``getpixel`` gives it) within ``tolerance`` of ``rgb`` per channel."""
    values = np.asarray(pixel, dtype=int)
    return values.shape == (3,) and bool(np.all(np.abs(values - rgb.astype(int)) <= tolerance))


def decode_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.convert("RGB")


def test_png_strip_size_and_rain_where_the_blob_is() -> None:
    forecast = make_forecast()
    image = decode_png(forecast_strip_png(forecast))
    assert image.size == strip_size_px(N_LEADS, 1)
    assert image.size == (1900, 170)  # 28 + 15 * 120 + 72, 32 + 120 + 18
    rain = forecast.rain_mmh()
    for slot, lead in ((0, 1), (14, 15)):
        peak = image.getpixel(panel_pixel(BLOB_ROW, blob_col(lead), slot))
        assert close_to(peak, rain_rgb(rain[lead - 1, BLOB_ROW : BLOB_ROW + 1, blob_col(lead)])[0])
        assert peak != WHITE
        assert image.getpixel(panel_pixel(5, 5, slot)) == WHITE  # dry corner
    # the blob moved: where lead 1 rains, lead 15 is dry
    assert image.getpixel(panel_pixel(BLOB_ROW, blob_col(1), 14)) == WHITE
    assert (
        len(np.unique(np.asarray(image).reshape(-1, 3), axis=0)) > 50
    )  # a colour scale, not a blank or two-tone image


def test_png_strip_with_observed_row_and_chosen_leads() -> None:
    forecast = make_forecast()
    observed = {1: forecast.rain_mmh()[0] * 0.0, 3: 10.0 * np.ones((GRID, GRID), np.float32)}
    observed[1][20, 80] = 50.0  # one observed cell, elsewhere dry
    image = decode_png(forecast_strip_png(forecast, observed, leads=[1, 3, 15]))
    one_row = strip_size_px(3, 1)
    assert image.size == strip_size_px(3, 2)
    assert image.size == (one_row[0], one_row[1] + PANEL_PX + LABEL_PX)
    assert image.size[0] == LEFT_PX + 3 * PANEL_PX + 72
    # lead 1: forecast blob in row 0, the observed cell (not the forecast) in row 1
    assert image.getpixel(panel_pixel(BLOB_ROW, blob_col(1), 0, 0)) != WHITE
    assert image.getpixel(panel_pixel(BLOB_ROW, blob_col(1), 0, 1)) == WHITE
    assert close_to(image.getpixel(panel_pixel(20, 80, 0, 1)), rain_rgb(np.array([[50.0]]))[0, 0])
    # lead 3 observed 10 mm/h everywhere; lead 15 not observed: no rain colours in that panel
    assert close_to(image.getpixel(panel_pixel(5, 5, 1, 1)), rain_rgb(np.array([[10.0]]))[0, 0])
    assert image.getpixel(panel_pixel(5, 5, 2, 1)) == WHITE
    # the third forecast panel is lead 15
    assert image.getpixel(panel_pixel(BLOB_ROW, blob_col(15), 2, 0)) != WHITE


def test_png_strip_refuses_bad_leads_and_shapes() -> None:
    forecast = make_forecast()
    with pytest.raises(ValueError, match="leads"):
        forecast_strip_png(forecast, leads=[0, 1])
    with pytest.raises(ValueError, match="leads"):
        forecast_strip_png(forecast, leads=[16])
    with pytest.raises(ValueError, match="observed lead 16"):
        forecast_strip_png(forecast, {16: np.zeros((GRID, GRID))})
    with pytest.raises(ValueError, match="shape"):
        forecast_strip_png(forecast, {1: np.zeros((50, 50))})


def test_png_strip_is_the_same_from_concurrent_threads() -> None:
    forecasts = [make_forecast(), replace(make_forecast(), site_id="other-1")]
    serial = [forecast_strip_png(f, leads=[1, 8, 15]) for f in forecasts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda f: forecast_strip_png(f, leads=[1, 8, 15]), forecasts * 3))
    assert parallel == serial * 3
    assert serial[0] != serial[1]  # the title differs


# --- GIF ---------------------------------------------------------------------------------------


def test_gif_has_one_frame_per_lead_and_shows_the_blob_moving() -> None:
    forecast = make_forecast()
    gif = Image.open(io.BytesIO(forecast_animation_gif(forecast)))
    assert gif.format == "GIF"
    assert len(list(ImageSequence.Iterator(gif))) == N_LEADS
    assert gif.info["loop"] == 0
    width, height = gif.size
    assert width == GRID * GIF_SCALE and height > GRID * GIF_SCALE
    title_px = 18
    rain = forecast.rain_mmh()
    for lead in (1, 15):
        gif.seek(lead - 1)
        assert gif.info["duration"] == GIF_FRAME_MS
        frame = gif.convert("RGB")
        x = blob_col(lead) * GIF_SCALE + 1
        y = title_px + BLOB_ROW * GIF_SCALE + 1
        expected = rain_rgb(rain[lead - 1, BLOB_ROW : BLOB_ROW + 1, blob_col(lead)])[0]
        assert close_to(frame.getpixel((x, y)), expected, tolerance=20)
        assert frame.getpixel((5 * GIF_SCALE, title_px + 90 * GIF_SCALE)) == WHITE
    assert frame.getpixel((blob_col(1) * GIF_SCALE + 1, title_px + BLOB_ROW * GIF_SCALE)) == WHITE


def test_gif_keeps_identical_maps_as_separate_frames() -> None:
    still = blob_grey([(50, 50)] * 4)  # persistence: the same map at every lead
    gif = Image.open(io.BytesIO(forecast_animation_gif(make_forecast(still))))
    assert (
        len(list(ImageSequence.Iterator(gif))) == 4
    )  # the lead label differs, so no frame is merged


def _georeferenced(forecast: Forecast) -> Forecast:
    from pyproj import CRS

    from core.georef import GridGeoref

    georef = GridGeoref(
        CRS.from_epsg(3035).to_wkt(), 4_000_000.0, 2000.0, 3_200_000.0, -2000.0, nx=GRID, ny=GRID
    )  # fmt: skip (200 km: a line every 0.5 or 1 degree)
    return replace(forecast, georef=georef)


def test_the_colour_scale_is_pysteps_radar_scale():
    from pysteps.visualization.precipfields import get_colormap

    cmap, norm, _levels, _labels = get_colormap("intensity", units="mm/h", colorscale="pysteps")
    for rate in (0.2, 1.2, 3.0, 30.0):
        expected = np.asarray(cmap(norm(rate))[:3]) * 255
        assert close_to(tuple(rain_rgb(np.array([[rate]]))[0, 0]), expected, tolerance=1)
    assert tuple(rain_rgb(np.array([[0.0]]))[0, 0]) == WHITE  # below the scale: no rain


def test_georeferenced_maps_carry_a_graticule_and_others_do_not():
    from service.formats.png import GRATICULE_RGB, graticule_lines

    plain = make_forecast(np.zeros((N_LEADS, GRID, GRID), dtype=np.float32))
    placed = _georeferenced(plain)
    assert graticule_lines(plain) is None
    east, south = graticule_lines(placed)
    assert east.any() and south.any()  # lines of both kinds cross a 200 km grid
    grey = np.asarray(GRATICULE_RGB)

    def grey_share(image: Image.Image) -> float:
        pixels = np.asarray(image.convert("RGB"), dtype=int)
        return float((np.abs(pixels - grey).max(axis=-1) <= 2).mean())

    assert grey_share(decode_png(forecast_strip_png(placed))) > grey_share(
        decode_png(forecast_strip_png(plain))
    )
    frames = [f.convert("RGB") for f in ImageSequence.Iterator(Image.open(io.BytesIO(
        forecast_animation_gif(placed))))]  # fmt: skip
    assert grey_share(frames[0]) > 0.005
    first_plain = Image.open(io.BytesIO(forecast_animation_gif(plain))).convert("RGB")
    assert grey_share(first_plain) < grey_share(frames[0])
