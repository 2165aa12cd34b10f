"""Forecasts a meteorologist can put on a map: georeference from the frames to every output.

A synthetic site in a radar-centred azimuthal projection (`ingest.cf_writer.SYNTH_GRID_MAPPING`)
is ingested, forecast and served over real HTTP; the NetCDF's lat/lon are compared with pyproj
applied to the input grid, the GeoJSON opened with shapely, the GeoTIFF with rasterio, and the
point route asked by lat/lon. A site without georeference keeps working on grid indices.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import httpx
import numpy as np
import pytest
import xarray as xr
from pyproj import CRS, Transformer

from core import keys
from ingest.cf_writer import SYNTH_GRID_MAPPING, write_synthetic_feed
from ingest.ingestor import Ingestor
from ingest.normalize import centre_crop, resize
from service.api.app import create_app
from service.inference import InferenceWorker
from service.methods_runner import MethodRunner
from tests.service.helpers import FEED_START, service_settings
from tests.service.live_server import serving

SITE = "geo-01"
METHODS = ("convlstm", "persistence")


@pytest.fixture(scope="module")
def geo_feed(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("geo-feed")
    return write_synthetic_feed(
        folder, 7, site_id=SITE, start=FEED_START, shape=(96, 96), seed=5,
        grid_mapping=SYNTH_GRID_MAPPING,
    )  # fmt: skip


@pytest.fixture
def geo_service(tmp_path, redis_conn, small_checkpoint, geo_feed, feed):
    settings = service_settings(
        tmp_path / "var",
        small_checkpoint,
        methods=METHODS,
        product_institution="Test Weather Service",
        product_contact_email="nowcast-ops@weather.example.org",
        public_base_url="https://nowcast.weather.example.org",
    )
    ingestor = Ingestor(settings, redis_conn)
    for path in [*geo_feed, *feed[:6]]:  # and synth-01, a site without georeference
        assert ingestor.ingest_bytes(path.read_bytes(), str(path)).outcome == "accepted"
    worker = InferenceWorker(settings, redis_conn, MethodRunner(settings), consumer="geo")
    while worker.process_once() > 0:
        pass
    with serving(create_app(settings, redis_conn)) as base_url:
        yield base_url, settings


def _input_lonlat(settings, frame: Path) -> tuple[np.ndarray, np.ndarray]:
    """lon/lat of the normalised cells, from the input grid itself: its x/y carried through
    the crop and resize like the data, then pyproj."""
    import netCDF4

    with netCDF4.Dataset(frame) as ds:
        x_km, y_km = ds["x"][:].astype(float), ds["y"][:].astype(float)
    x, y = np.meshgrid(x_km * 1000, y_km * 1000)
    size, target = settings.crop_cells, settings.target_cells
    span, moved = 1e7, {}
    for name, values in (("x", x), ("y", y)):
        low = values.min()
        moved[name] = resize(centre_crop((values - low) / span, size), target) * span + low
    crs = CRS.from_cf(SYNTH_GRID_MAPPING)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        moved["x"], moved["y"]
    )
    return np.asarray(lon), np.asarray(lat)


def test_netcdf_places_the_cells_where_the_input_had_them_and_is_cf_and_acdd_clean(
    geo_service, geo_feed, tmp_path
):
    base_url, settings = geo_service
    sites = {s["id"]: s for s in httpx.get(f"{base_url}/v1/sites").json()}
    assert sites[SITE]["georeferenced"] is True and sites["synth-01"]["georeferenced"] is False
    lon_min, lat_min, lon_max, lat_max = sites[SITE]["bbox"]
    assert lon_min < 5.18 < lon_max and lat_min < 52.1 < lat_max  # the radar in its box

    response = httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/latest?format=netcdf")
    assert response.status_code == 200, response.text
    body = response.content
    path = tmp_path / "f.nc"
    path.write_bytes(body)
    with xr.open_dataset(path) as ds:
        assert ds["rainfall_rate"].attrs["grid_mapping"] == "crs"
        assert ds["x"].attrs["axis"] == "X" and ds["x"].attrs["units"] == "m"
        assert CRS.from_wkt(ds["crs"].attrs["crs_wkt"]) == CRS.from_cf(SYNTH_GRID_MAPPING)
        lon, lat = _input_lonlat(settings, geo_feed[0])
        np.testing.assert_allclose(ds["lon"].values, lon, atol=1e-5)
        np.testing.assert_allclose(ds["lat"].values, lat, atol=1e-5)
        assert ds.attrs["geospatial_lat_min"] == pytest.approx(float(lat.min()))
        assert ds.attrs["Conventions"] == "CF-1.8, ACDD-1.3"
        # who issues it, as configured (NOWCAST_PRODUCT_*)
        assert ds.attrs["institution"] == ds.attrs["creator_name"] == "Test Weather Service"
        email = "nowcast-ops@weather.example.org"
        assert ds.attrs["creator_email"] == ds.attrs["publisher_email"] == email
        assert ds.attrs["creator_url"] == "https://nowcast.weather.example.org"
    for checker in ("cf:1.8", "acdd:1.3"):
        assert _failures(path, checker) == [], checker


ACCEPTED_MISSING = (
    "geospatial_vertical",  # a 2-D surface field: no vertical extent
    "geospatial_bounds_vertical_crs",
    "standard_name_vocabulary",  # would make the CF checker fetch a table (no network)
)


def _failures(path: Path, checker: str) -> list[tuple[str, list[str]]]:
    """High and medium priority checks of ``checker`` that fail, but for `ACCEPTED_MISSING`."""
    from compliance_checker.base import BaseCheck
    from compliance_checker.runner import CheckSuite

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        CheckSuite.load_all_available_checkers()
    suite = CheckSuite()
    ds = suite.load_dataset(str(path))
    try:
        groups, errors = suite.run_all(ds, [checker], skip_checks=[])[checker]
    finally:
        ds.close()
    assert errors == {}, f"checks that crashed: {errors}"

    def failed(result) -> bool:
        value = result.value
        return value[0] < value[1] if isinstance(value, tuple) else not value

    out = []
    for group in groups:
        if group.weight < BaseCheck.MEDIUM or not failed(group):
            continue
        messages = [m for m in group.msgs if not any(a in m for a in ACCEPTED_MISSING)]
        if messages:
            out.append((group.name, messages))
    return out


def test_geojson_areas_lie_in_the_sites_box_at_every_lead_and_threshold(geo_service):
    from shapely.geometry import box, shape

    base_url, _settings = geo_service
    site = next(s for s in httpx.get(f"{base_url}/v1/sites").json() if s["id"] == SITE)
    response = httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/latest?format=geojson")
    assert response.headers["content-type"] == "application/geo+json"
    collection = response.json()
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 15 * 5
    area = box(*site["bbox"]).buffer(1e-4)  # the box is rounded to 1e-5 degrees
    nonempty = 0
    for feature in collection["features"]:
        geometry = shape(feature["geometry"])
        assert geometry.is_valid
        props = feature["properties"]
        assert {"lead", "valid_time", "threshold_mmh", "area_km2"} <= set(props)
        if not geometry.is_empty:
            nonempty += 1
            assert area.contains(geometry)
            assert props["area_km2"] > 0
    assert nonempty > 0
    light = [f for f in collection["features"] if f["properties"]["lead"] == 1]
    areas = [f["properties"]["area_km2"] for f in light]
    assert areas == sorted(areas, reverse=True)  # more rain at 0.5 than at 30 mm/h


def test_geotiff_is_a_cog_in_the_sites_crs_with_the_forecast_in_its_bands(geo_service, tmp_path):
    import rasterio

    base_url, _settings = geo_service
    tif = httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/latest?format=geotiff").content
    nc = httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/latest?format=netcdf").content
    (tmp_path / "f.nc").write_bytes(nc)
    with rasterio.open(io.BytesIO(tif)) as raster, xr.open_dataset(tmp_path / "f.nc") as ds:
        assert raster.count == 15
        to_lonlat = Transformer.from_crs(raster.crs.to_wkt(), "EPSG:4326", always_xy=True)
        lon, lat = to_lonlat.transform(*raster.xy(5, 7))  # the CRS places the cells right
        assert lon == pytest.approx(float(ds["lon"][5, 7]), abs=1e-6)
        assert lat == pytest.approx(float(ds["lat"][5, 7]), abs=1e-6)
        assert raster.tags()["units"] == "mm h-1"
        np.testing.assert_allclose(raster.read(3), ds["rainfall_rate"].values[2], atol=1e-4)
        x, y = raster.xy(0, 0)  # the first cell's centre
        assert x == pytest.approx(float(ds["x"][0])) and y == pytest.approx(float(ds["y"][0]))
    one = httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/latest?format=geotiff&lead=4").content
    with rasterio.open(io.BytesIO(one)) as raster:
        assert raster.count == 1 and "lead 4" in raster.descriptions[0]


def test_point_by_lat_lon_is_the_nearest_cell_and_refusals_are_clear(geo_service, tmp_path):
    base_url, _settings = geo_service
    nc = httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/latest?format=netcdf").content
    (tmp_path / "f.nc").write_bytes(nc)
    with xr.open_dataset(tmp_path / "f.nc") as ds:
        lat, lon = float(ds["lat"][10, 20]), float(ds["lon"][10, 20])
        expected = ds["rainfall_rate"].values[:, 10, 20]
    point = httpx.get(
        f"{base_url}/v1/sites/{SITE}/nowcast/latest/point", params={"lat": lat, "lon": lon}
    ).json()
    assert (point["row"], point["col"]) == (10, 20)
    assert point["lat"] == pytest.approx(lat, abs=1e-4)
    np.testing.assert_allclose(point["rain_mmh"], expected, atol=1e-3)

    def refused(site: str, **params: object) -> str:
        response = httpx.get(f"{base_url}/v1/sites/{site}/nowcast/latest/point", params=params)
        assert response.status_code == 422, response.text
        return json.loads(response.text)["detail"]

    assert "outside" in refused(SITE, lat=0.0, lon=0.0)
    assert "no georeference" in refused("synth-01", lat=lat, lon=lon)
    assert "either row and col, or lat and lon" in refused(SITE, row=1)
    for fmt in ("geojson", "geotiff"):
        response = httpx.get(f"{base_url}/v1/sites/synth-01/nowcast/latest?format={fmt}")
        assert response.status_code == 422 and "no georeference" in response.json()["detail"]


def test_the_graticule_route_traces_meridians_and_parallels_where_the_cells_have_them(
    geo_service, tmp_path
):
    """Each line's points, interpolated in the NetCDF's own lat/lon, have the line's value."""
    from scipy.ndimage import map_coordinates

    base_url, _settings = geo_service
    body = httpx.get(f"{base_url}/v1/sites/{SITE}/graticule").json()
    assert body["georeferenced"] and body["step_deg"] > 0
    rows, cols = body["shape"]
    (tmp_path / "f.nc").write_bytes(
        httpx.get(f"{base_url}/v1/sites/{SITE}/nowcast/latest?format=netcdf").content
    )
    with xr.open_dataset(tmp_path / "f.nc") as ds:
        fields = {"lon": ds["lon"].values, "lat": ds["lat"].values}
    axes = {line["axis"] for line in body["lines"]}
    assert axes == {"lon", "lat"}
    for line in body["lines"]:
        assert line["value_deg"] / body["step_deg"] == pytest.approx(
            round(line["value_deg"] / body["step_deg"]), abs=1e-6
        )
        for piece in line["pieces"]:
            xy = np.asarray(piece)
            assert len(xy) >= 2
            assert (xy[:, 0] >= 0).all() and (xy[:, 0] <= cols - 1).all()
            assert (xy[:, 1] >= 0).all() and (xy[:, 1] <= rows - 1).all()
            at = map_coordinates(fields[line["axis"]], [xy[:, 1], xy[:, 0]], order=1)
            np.testing.assert_allclose(at, line["value_deg"], atol=0.02 * body["step_deg"])

    plain = httpx.get(f"{base_url}/v1/sites/synth-01/graticule").json()
    assert plain == {
        "site": "synth-01",
        "georeferenced": False,
        "shape": None,
        "step_deg": None,
        "lines": [],
    }
    assert httpx.get(f"{base_url}/v1/sites/nowhere/graticule").status_code == 404


def _real_input_lonlat(frame: Path, crop: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """lon/lat of the normalised cells of a real CF frame: its own x/y (m or km) and its own
    grid mapping, carried through the crop and resize like the data, then pyproj."""
    import netCDF4

    with netCDF4.Dataset(frame) as ds:
        var = next(v for v in ds.variables.values() if "grid_mapping" in v.ncattrs())
        mapping = ds[var.grid_mapping]
        attrs = {k: mapping.getncattr(k) for k in mapping.ncattrs()}
        crs = CRS.from_wkt(attrs["crs_wkt"]) if "crs_wkt" in attrs else CRS.from_cf(attrs)
        scale = {"km": 1000.0, "m": 1.0}[ds["x"].units]
        x, y = np.meshgrid(ds["x"][:] * scale, ds["y"][:] * scale)
    moved = {}
    for name, values in (("x", x), ("y", y)):
        low, span = values.min(), np.ptp(values) * 2
        moved[name] = resize(centre_crop((values - low) / span, crop), target) * span + low
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        moved["x"], moved["y"]
    )
    return np.asarray(lon), np.asarray(lat)


@pytest.mark.parametrize("event", ["bom-melbourne-6min", "fmi-finland-5min-20170509"])
def test_real_frames_forecasts_lie_where_their_radar_grids_lie(
    event, shared_radar, tmp_path, redis_conn, small_checkpoint
):
    frames = sorted((shared_radar / event).glob("*.nc"))[:6]
    if len(frames) < 6:
        pytest.skip(f"{event} not in {shared_radar}")
    settings = service_settings(tmp_path / "var", small_checkpoint, methods=("persistence",),
                                publish_method="persistence")  # fmt: skip
    ingestor = Ingestor(settings, redis_conn)
    for path in frames:
        assert ingestor.ingest_bytes(path.read_bytes(), str(path)).outcome == "accepted"
    worker = InferenceWorker(settings, redis_conn, MethodRunner(settings), consumer="real")
    while worker.process_once() > 0:
        pass
    site = redis_conn.smembers(keys.SITES).pop().decode()
    with serving(create_app(settings, redis_conn)) as base_url:
        url = f"{base_url}/v1/sites/{site}/nowcast/latest?method=persistence&format=netcdf"
        response = httpx.get(url)
        assert response.status_code == 200, response.text
    (tmp_path / "f.nc").write_bytes(response.content)
    lon, lat = _real_input_lonlat(frames[0], settings.crop_cells, settings.target_cells)
    with xr.open_dataset(tmp_path / "f.nc") as ds:
        np.testing.assert_allclose(ds["lon"].values, lon, atol=1e-4)
        np.testing.assert_allclose(ds["lat"].values, lat, atol=1e-4)


def test_odim_composites_are_ingested_forecast_and_served_on_their_projection(
    shared_odim, tmp_path, redis_conn, small_checkpoint
):
    frames = sorted(shared_odim.rglob("*.hdf"))[:6]
    settings = service_settings(tmp_path / "var", small_checkpoint, methods=("persistence",),
                                publish_method="persistence")  # fmt: skip
    ingestor = Ingestor(settings, redis_conn)
    for path in frames:
        assert ingestor.ingest_bytes(path.read_bytes(), path.name).outcome == "accepted"
    worker = InferenceWorker(settings, redis_conn, MethodRunner(settings), consumer="odim")
    while worker.process_once() > 0:
        pass
    with serving(create_app(settings, redis_conn)) as base_url:
        site = httpx.get(f"{base_url}/v1/sites").json()[0]
        assert site["id"] == "org-247" and site["georeferenced"] and site["cadence_min"] == 15
        latest = f"{base_url}/v1/sites/org-247/nowcast/latest?method=persistence"
        body = httpx.get(f"{latest}&format=netcdf").content
        areas = httpx.get(f"{latest}&format=geojson").json()
    (tmp_path / "f.nc").write_bytes(body)
    with xr.open_dataset(tmp_path / "f.nc") as ds:
        assert ds["time"].size == 15 and ds["rainfall_rate"].attrs["grid_mapping"] == "crs"
        assert "Lambert_Azimuthal_Equal_Area" in ds["crs"].attrs["crs_wkt"].replace(" ", "_")
        # the centre crop of the pan-European grid: around its centre, lon 10 E, lat 55 N
        assert 5 < float(ds["lon"].mean()) < 15 and 50 < float(ds["lat"].mean()) < 60
    assert len(areas["features"]) == 15 * 5
