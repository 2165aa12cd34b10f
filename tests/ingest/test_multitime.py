"""Multi-time CF-NetCDF archives (issue 31): read a step at a time, split into frames the
ingest takes as a feed, and brought to the network's input by cell size."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from core import keys
from ingest.cf_writer import write_cf_frame
from ingest.ingestor import Ingestor, norm_params_for
from ingest.multitime import archive_fields, is_multitime, split_archive
from ingest.normalize import normalise_dbz
from ingest.reader import read_radar_bytes
from ingest.worker import IngestWorker
from tests.ingest.helpers import START, small_settings

FIVE = timedelta(minutes=5)


def write_archive(
    path: Path, dbz: np.ndarray, minutes: list[int], fill: int | None = 255, site: str | None = None
) -> None:
    """A (T, H, W) reflectivity archive packed as uint8 like ../shared/data/archives:
    dBZ = 0.5 stored - 32, ``fill`` outside coverage (NaN in ``dbz``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as ds:
        ds.Conventions = "CF-1.8"
        if site:
            ds.site_id = site
        ds.createDimension("time", len(minutes))
        ds.createDimension("y", dbz.shape[1])
        ds.createDimension("x", dbz.shape[2])
        t = ds.createVariable("time", "i4", ("time",))
        t.standard_name, t.units = "time", f"minutes since {START:%Y-%m-%d %H:%M:%S}"
        t[:] = minutes
        kwargs = {"fill_value": fill} if fill is not None else {}
        z = ds.createVariable("reflectivity", "u1", ("time", "y", "x"), zlib=True, **kwargs)
        z.standard_name, z.units = "equivalent_reflectivity_factor", "dBZ"
        z.scale_factor, z.add_offset = 0.5, -32.0
        z.set_auto_maskandscale(False)
        stored = np.where(np.isnan(dbz), fill or 0, np.round((dbz + 32.0) / 0.5))
        z[:] = stored.astype(np.uint8)


def _rain_cube(frames: int, shape: tuple[int, int] = (96, 96)) -> np.ndarray:
    dbz = np.full((frames, *shape), -32.0)
    for i in range(frames):
        dbz[i, 30:50, 20 + 2 * i : 40 + 2 * i] = 40.0
    dbz[:, :5, :] = np.nan  # outside coverage
    return dbz


def test_an_archive_is_read_a_step_at_a_time_in_time_order(tmp_path):
    path = tmp_path / "net-a" / "run1.nc"
    write_archive(path, _rain_cube(4), [10, 0, 5, 15])  # stored out of order
    assert is_multitime(path)
    fields = list(archive_fields(path))
    assert [f.valid_time for f in fields] == [START + FIVE * i for i in range(4)]
    assert {f.site_id for f in fields} == {"net-a"}  # no site attribute: the folder's name
    first = fields[0]  # minute 0 is the cube's step 1
    assert first.dbz[40, 25] == pytest.approx(40.0) and np.isnan(first.dbz[0, 0])
    assert first.dbz[90, 90] == pytest.approx(-32.0)  # covered, no echo


def test_a_single_frame_file_is_no_archive(tmp_path):
    path = tmp_path / "one.nc"
    write_cf_frame(path, np.ones((96, 96)), START, "t-1", "rain_rate")
    assert not is_multitime(path)
    assert not is_multitime(tmp_path / "missing.nc")


def test_split_frames_read_exactly_as_the_archive_steps(tmp_path):
    path = tmp_path / "net-a" / "run1.nc"
    write_archive(path, _rain_cube(3), [0, 5, 10], site="radar-x")
    steps = list(archive_fields(path))
    parts = list(split_archive(path))
    assert [name for name, _ in parts] == [
        f"run1_{t:%Y%m%dT%H%MZ}.nc" for t in (START, START + FIVE, START + 2 * FIVE)
    ]
    for (name, raw), step in zip(parts, steps, strict=True):
        field = read_radar_bytes(raw, name)
        assert field.site_id == "radar-x" and field.valid_time == step.valid_time
        np.testing.assert_array_equal(field.dbz, step.dbz)


def test_the_ingest_takes_an_archive_as_a_feed_of_frames(tmp_path, redis_conn):
    settings = small_settings(tmp_path / "data")
    worker = IngestWorker(Ingestor(settings, redis_conn), settings, settle_s=0.0)
    write_archive(tmp_path / "in" / "site-z" / "run.nc", _rain_cube(6), [0, 5, 10, 15, 20, 25])
    tally = worker.run_folders([tmp_path / "in"], watch=False)
    assert tally.by_outcome == {"accepted": 6}
    status = worker.ingestor.window.status("site-z")
    assert status.count == 6 and status.cadence_min == 5 and status.missing_count == 0
    assert len(list(worker.ingestor.archive.frames("site-z"))) == 6  # each frame archived
    assert redis_conn.xlen(keys.EVENTS_STREAM) == 6
    again = worker.run_folders([tmp_path / "in"], watch=False)  # seen: not taken twice
    assert again.by_outcome == {"accepted": 6}


def test_a_coarse_grid_is_brought_to_the_input_by_cell_size(tmp_path):
    """TAASRAD19's 64 x 64 cells of 3.75 km: 240 km of the paper's 330 km crop, centred."""
    settings = small_settings(
        tmp_path,
        crop_cells=330,
        target_cells=100,
        disk_radius_cells=10,
        sites={"taas": {"cell_km": 3.75, "no_echo_dbz": 0.0}},
    )
    params = norm_params_for(settings, "taas")
    assert (params.crop_cells, params.disk_radius_cells, params.pad_to_crop) == (88, 3, True)
    dbz = np.full((64, 64), 30.0, dtype=np.float32)
    dbz[:, :32] = 0.0  # the archive's "no echo"
    grey, covered = normalise_dbz(dbz, params)
    assert grey.shape == (100, 100) and covered == pytest.approx(64 * 64 / 88**2)
    assert grey[50, 80] == pytest.approx((30 + 10) / 80, abs=1e-3)  # inside the radar's 240 km
    assert grey[50, 3] < 1e-6 and grey[3, 80] < 1e-6  # beyond it: padded, no echo observed
    assert grey[50, 30] < 1e-6  # 0 dBZ read as no echo, not as 0.125 grey
    paper = norm_params_for(settings, "other")
    assert paper.version == norm_params_for(small_settings(tmp_path, crop_cells=330,
        target_cells=100, disk_radius_cells=10), "other").version  # fmt: skip


def test_the_real_archives_are_read(shared_archives):
    taasrad = sorted((shared_archives / "taasrad19-trentino-5min-64px").glob("*.nc"))[0]
    fields = list(archive_fields(taasrad))
    with netCDF4.Dataset(taasrad) as ds:
        assert len(fields) == ds.dimensions["time"].size
    assert fields[0].dbz.shape == (64, 64)
    assert all(b.valid_time - a.valid_time == FIVE for a, b in pairwise(fields))
    dpc = sorted((shared_archives / "dpc-italy-north-10min-2025").glob("*.nc"))[0]
    first = next(archive_fields(dpc))
    assert first.dbz.shape == (479, 617)
    assert np.isnan(first.dbz).any() and (first.dbz == -32.0).any()  # "no radar" != "no rain"
