"""`core.georef`: a grid's place on Earth through the crop and the resize of the method."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import CRS, Transformer

from core.georef import GridGeoref, regular_axis
from ingest.normalize import NormParams, centre_crop, resize, target_georef

UTM_32N = CRS.from_epsg(32632).to_wkt()


def _grid(nx: int = 400, ny: int = 360, dx: float = 1000.0, dy: float = -1000.0) -> GridGeoref:
    return GridGeoref(UTM_32N, x0_m=300_000.0, dx_m=dx, y0_m=5_600_000.0, dy_m=dy, nx=nx, ny=ny)


@pytest.mark.parametrize(("size", "target"), [(330, 100), (64, 32), (200, 100)])
def test_crop_and_resize_place_cells_where_the_normalisation_puts_their_values(size, target):
    """A field holding each cell's own x (and y) goes through the same crop and resize as the
    radar data; the values that come out are where the geometry says the cells are."""
    grid = _grid()
    x, y = np.meshgrid(grid.x_m(), grid.y_m())
    params = NormParams(crop_cells=size, target_cells=target, disk_radius_cells=0)
    # resize clips to [0, 1] grey: carry the coordinates as fractions of a span
    span = 1e6
    moved = {
        name: resize(centre_crop((values - values.min()) / span, size), target) * span
        + values.min()
        for name, values in (("x", x), ("y", y))
    }
    expected = target_georef(grid, params)
    ex, ey = np.meshgrid(expected.x_m(), expected.y_m())
    np.testing.assert_allclose(moved["x"], ex, atol=0.5)
    np.testing.assert_allclose(moved["y"], ey, atol=0.5)
    assert expected.dx_m == pytest.approx(grid.dx_m * size / target)


def test_lonlat_and_cell_of_agree_with_pyproj_and_each_other():
    grid = _grid(nx=50, ny=40)
    lon, lat = grid.lonlat()
    to_lonlat = Transformer.from_crs(UTM_32N, "EPSG:4326", always_xy=True)
    expected_lon, expected_lat = to_lonlat.transform(
        grid.x0_m + 7 * grid.dx_m, grid.y0_m + 3 * grid.dy_m
    )
    assert lon[3, 7] == pytest.approx(expected_lon, abs=1e-9)
    assert lat[3, 7] == pytest.approx(expected_lat, abs=1e-9)
    for row, col in ((0, 0), (3, 7), (39, 49), (20, 25)):
        assert grid.cell_of(float(lon[row, col]), float(lat[row, col])) == (row, col)
    assert grid.cell_of(100.0, 0.0) is None  # far outside
    lon_min, lat_min, lon_max, lat_max = grid.bounds_lonlat()
    assert lon_min < lon.min() and lon.max() < lon_max  # the edges lie beyond the centres
    assert lat_min < lat.min() and lat.max() < lat_max


def test_json_round_trip_and_same_grid():
    grid = _grid()
    back = GridGeoref.from_json(grid.to_json())
    assert back == grid and back.same_grid(grid)
    assert not grid.same_grid(_grid(dx=1100.0))
    other_crs = GridGeoref(CRS.from_epsg(32633).to_wkt(), **{
        k: getattr(grid, k) for k in ("x0_m", "dx_m", "y0_m", "dy_m", "nx", "ny")
    })  # fmt: skip
    assert not grid.same_grid(other_crs)
    with pytest.raises(ValueError, match="not a grid geometry"):
        GridGeoref.from_json('{"crs_wkt": "x"}')


def test_regular_axis_accepts_even_spacing_only():
    assert regular_axis(np.array([0.0, 1000.0, 2000.0])) == (0.0, 1000.0)
    assert regular_axis(np.array([10.0, 9.0, 8.0])) == (10.0, -1.0)
    assert regular_axis(np.array([0.0, 1000.0, 2500.0])) is None
    assert regular_axis(np.array([0.0])) is None
    assert regular_axis(np.array([0.0, np.nan, 2.0])) is None
