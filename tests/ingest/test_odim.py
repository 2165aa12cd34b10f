"""ODIM_H5 in (ingest.odim through the reader and the Ingestor): the real OPERA composite and
written products of every kind the reader takes, and malformed ones quarantined with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import h5py
import numpy as np
import pytest

from core.frame import RejectReason
from ingest.odim import NO_ECHO_DBZ
from ingest.reader import read_radar_bytes, read_radar_file
from tests.ingest.odim_writer import odim_bytes

VALID = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _stored_rain(shape=(96, 96)) -> np.ndarray:
    """uint16 stored values: 2 mm/h (200 at gain 0.01) in a square, undetect (0) elsewhere,
    nodata (65535) in the last rows."""
    raw = np.zeros(shape, dtype=np.uint16)
    raw[30:60, 30:60] = 200
    raw[-5:, :] = 65535
    return raw


def test_the_real_opera_composite_is_read_with_its_grid_time_and_site(shared_odim):
    path = sorted(shared_odim.rglob("*.hdf"))[0]
    field = read_radar_file(path)
    assert field.site_id == "org-247"  # what/source "ORG:247"
    assert field.valid_time == datetime(2018, 8, 24, 18, 0, tzinfo=UTC)
    assert field.quantity == "rainfall_rate" and field.dbz.shape == (2200, 1900)
    with h5py.File(path) as h5:
        where = dict(h5["where"].attrs)
        stored = h5["dataset1/data1/data"][...]
        what = dict(h5["dataset1/what"].attrs)
    assert np.isnan(field.dbz[stored == what["nodata"]]).all()  # outside coverage
    assert np.isneginf(field.dbz[stored == what["undetect"]]).all()  # covered, 0 mm/h
    lon, lat = field.georef.lonlat()
    # the cell centres lie half a pixel inside the corners the file states
    assert lon[-1, 0] == pytest.approx(where["LL_lon"], abs=0.02)
    assert lat[-1, 0] == pytest.approx(where["LL_lat"], abs=0.02)
    assert lon[0, -1] == pytest.approx(where["UR_lon"], abs=0.05)
    assert lat[0, -1] == pytest.approx(where["UR_lat"], abs=0.02)


def test_the_real_composites_go_into_a_window_like_netcdf_frames(shared_odim, ingestor):
    paths = sorted(shared_odim.rglob("*.hdf"))[:3]
    for path in paths:
        assert ingestor.ingest_bytes(path.read_bytes(), path.name).outcome == "accepted"
    frames = ingestor.window.frames("org-247")
    assert [f.valid_time.minute for f in frames] == [0, 15, 30]
    again = ingestor.ingest_bytes(paths[0].read_bytes(), "again")
    assert again.reason is RejectReason.DUPLICATE  # idempotent, as NetCDF


def test_rate_gain_offset_nodata_undetect_and_source_node():
    field = read_radar_bytes(odim_bytes(_stored_rain(), VALID), "rate.h5")
    assert field.site_id == "tsrad" and field.valid_time == VALID
    rain = np.where(np.isfinite(field.dbz), 10 ** (field.dbz / 10), np.nan)
    z_of_2mmh = 200 * 2**1.6
    assert rain[45, 45] == pytest.approx(z_of_2mmh, rel=1e-3)
    assert np.isneginf(field.dbz[0, 0])  # undetect: no rain
    assert np.isnan(field.dbz[-1]).all()  # nodata: outside coverage
    assert field.georef is not None and field.georef.dx_m == 1000.0


def test_reflectivity_and_accumulation_products():
    dbzh = np.full((96, 96), 100, dtype=np.uint8)  # 100 * 0.5 - 32 = 18 dBZ
    dbzh[0, 0] = 0  # undetect
    field = read_radar_bytes(
        odim_bytes(dbzh, VALID, "DBZH", gain=0.5, offset=-32.0, nodata=255, obj="IMAGE"), "z.h5"
    )
    assert field.quantity == "equivalent_reflectivity_factor"
    assert field.dbz[5, 5] == pytest.approx(18.0) and field.dbz[0, 0] == NO_ECHO_DBZ
    acrr = np.full((96, 96), 50, dtype=np.uint16)  # 0.5 mm in 15 min = 2 mm/h
    field = read_radar_bytes(odim_bytes(acrr, VALID, "ACRR", interval_min=15), "acrr.h5")
    assert field.quantity == "precipitation_amount" and field.accumulation_min == 15.0
    rain = 10 ** (field.dbz[5, 5] / 10)
    assert rain == pytest.approx(200 * 2**1.6, rel=1e-3)


@pytest.mark.parametrize(
    ("options", "reason", "words"),
    [
        ({"obj": "PVOL"}, RejectReason.NO_PRECIPITATION_VARIABLE, "polar volumes"),
        ({"quantity": "VRADH"}, RejectReason.NO_PRECIPITATION_VARIABLE, "RATE"),
        ({"data_group": "values"}, RejectReason.NO_PRECIPITATION_VARIABLE, "RATE"),
        ({"gain": 0.0}, RejectReason.BAD_VALUES, "gain"),
        ({"source": "CMT:nothing"}, RejectReason.NO_SITE, "what/source"),
        ({"quantity": "ACRR"}, RejectReason.NO_VALID_TIME, "start and end"),
    ],
)
def test_malformed_products_are_quarantined_with_a_reason(ingestor, options, reason, words):
    result = ingestor.ingest_bytes(odim_bytes(_stored_rain(), VALID, **options), "bad.h5")
    assert result.outcome == "quarantined" and result.reason is reason, result
    assert words in result.message


def test_truncated_and_unprojected_products(ingestor):
    whole = odim_bytes(_stored_rain(), VALID)
    truncated = ingestor.ingest_bytes(whole[: len(whole) // 2], "cut.h5")
    assert truncated.outcome == "quarantined" and truncated.reason is RejectReason.UNREADABLE
    plain = read_radar_bytes(odim_bytes(_stored_rain(), VALID, projdef=None), "plain.h5")
    assert plain.georef is None  # read on grid indices
    named = read_radar_bytes(
        odim_bytes(_stored_rain(), VALID + timedelta(minutes=5), source="ORG:9"),
        "org.h5",
        site_id="my-site",
    )
    assert named.site_id == "my-site"


def test_frames_are_peeked_without_reading_their_data(shared_odim, tmp_path):
    from ingest.reader import peek_site_id, peek_valid_time

    path = sorted(shared_odim.rglob("*.hdf"))[0]
    assert peek_valid_time(path) == datetime(2018, 8, 24, 18, 0, tzinfo=UTC)
    assert peek_site_id(path) == "org-247"
    broken = tmp_path / "broken.h5"
    broken.write_bytes(path.read_bytes()[:4096])  # an HDF5 signature, then nothing usable
    assert peek_valid_time(broken) is None and peek_site_id(broken) is None
