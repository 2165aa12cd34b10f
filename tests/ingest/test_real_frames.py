"""Every real radar frame in ../shared/data/radar reads; one BOM frame end to end by hand.

Skips cleanly (fixture ``shared_radar``) where the data folder is absent.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import netCDF4
import numpy as np
import pytest
from scipy import ndimage
from skimage.transform import resize as sk_resize

from ingest.normalize import NormParams, normalise_dbz
from ingest.reader import read_radar_file

# folder glob -> (site id, quantity, accumulation minutes, expected file count, file-name regex)
SOURCES = {
    "bom-melbourne-6min": (
        "melb-2",
        "precipitation_amount",
        6.0,
        61,
        r"2_(\d{8})_(\d{6})\.prcp-cscn\.nc",
    ),
    "bom-mtstapylton-10min": (
        "mtstapl-66",
        "precipitation_amount",
        10.0,
        144,
        r"66_(\d{8})_(\d{6})\.prcp-c10\.nc",
    ),
    "fmi-finland-5min-*": (
        "fi-fmi-composite",
        "rainfall_rate",
        None,
        80,
        r"fi-fmi-composite_(\d{8})(\d{4})\.nc",
    ),
    "knmi-netherlands-5min-dbz/*": (
        "nl-knmi-composite",
        "equivalent_reflectivity_factor",
        None,
        720,
        r"nl-knmi-composite_(\d{8})(\d{4})\.nc",
    ),
}


def time_from_name(name: str, pattern: str) -> datetime:
    match = re.fullmatch(pattern, name)
    assert match, f"unexpected file name {name}"
    day, clock = match.groups()
    fmt = "%Y%m%d%H%M%S" if len(clock) == 6 else "%Y%m%d%H%M"
    return datetime.strptime(day + clock, fmt).replace(tzinfo=UTC)


@pytest.mark.real_data
@pytest.mark.parametrize("folder", list(SOURCES))
def test_every_real_frame_reads(shared_radar: Path, folder: str) -> None:
    site, quantity, accumulation, count, pattern = SOURCES[folder]
    files = sorted(p for d in shared_radar.glob(folder) for p in d.glob("*.nc"))
    assert len(files) == count, f"{folder}: {len(files)} files"
    problems: list[str] = []
    previous: datetime | None = None
    for path in files:
        field = read_radar_file(path)
        expected_time = time_from_name(path.name, pattern)
        dbz = field.dbz
        checks = {
            "2-D": dbz.ndim == 2 and min(dbz.shape) >= 330,
            "float32": dbz.dtype == np.float32,
            "site": field.site_id == site,
            "quantity": field.quantity == quantity,
            "aware UTC": field.valid_time.tzinfo is not None
            and field.valid_time.utcoffset() == timedelta(0),
            "time": field.valid_time == expected_time,
            "accumulation": field.accumulation_min == accumulation,
            "observed": bool(np.isfinite(dbz).any()),
            "no +inf": not bool(np.isposinf(dbz).any()),
            "plausible": float(np.nanmax(np.where(np.isfinite(dbz), dbz, np.nan))) < 100.0
            if np.isfinite(dbz).any()
            else True,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            problems.append(
                f"{path.name}: {bad} (site {field.site_id}, {field.valid_time}, "
                f"acc {field.accumulation_min}, {dbz.dtype} {dbz.shape})"
            )
        if previous is not None and folder.startswith("bom"):
            # BOM folders hold consecutive frames at their cadence
            assert expected_time - previous == timedelta(minutes=accumulation or 0), path.name
        previous = expected_time
    assert not problems, "\n".join(problems[:20])


# --- one BOM frame by hand ---------------------------------------------------------------------

BOM_FRAME = "bom-melbourne-6min/2_20180616_152400.prcp-cscn.nc"


def reference_disk(radius: int, supersample: int = 200) -> np.ndarray:
    """Normalised area of each (2r+1)^2 cell inside the circle of radius r (supersampled)."""
    n = 2 * radius + 1
    sub = (np.arange(n * supersample) + 0.5) / supersample - n / 2.0
    inside = sub[:, None] ** 2 + sub[None, :] ** 2 <= radius**2
    area = inside.reshape(n, supersample, n, supersample).mean(axis=(1, 3))
    return area / area.sum()


def read_bom_by_hand(path: Path) -> tuple[np.ndarray, float, datetime]:
    """Accumulation (mm, NaN where missing), interval in minutes and valid time, raw netCDF4."""
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_maskandscale(False)
        var = ds.variables["precipitation"]
        raw = np.asarray(var[...]).astype(np.float64)
        fill = float(var.getncattr("_FillValue"))
        scale = float(var.getncattr("scale_factor"))
        offset = float(var.getncattr("add_offset"))
        valid = int(np.asarray(ds.variables["valid_time"][...]))
        start = int(np.asarray(ds.variables["start_time"][...]))
        assert ds.variables["valid_time"].getncattr("units").startswith("seconds since 1970-01-01")
    mm = np.where(raw == fill, np.nan, raw * scale + offset)
    return mm, (valid - start) / 60.0, datetime.fromtimestamp(valid, tz=UTC)


@pytest.mark.real_data
def test_bom_frame_end_to_end_by_hand(shared_radar: Path) -> None:
    path = shared_radar / BOM_FRAME
    if not path.exists():
        pytest.skip(f"{BOM_FRAME} not in {shared_radar}")
    mm, minutes, valid_time = read_bom_by_hand(path)
    assert minutes == 6.0
    assert valid_time == datetime(2018, 6, 16, 15, 24, tzinfo=UTC)
    assert np.nanmax(mm) > 1.0  # a wet frame, so the check means something
    mm = np.where(mm < 0, 0.0, mm)  # the reader's documented handling of BOM's -0.1 mm cells

    rate = mm * 60.0 / minutes  # mm/h
    with np.errstate(divide="ignore", invalid="ignore"):
        dbz = 10.0 * np.log10(200.0 * rate**1.6)  # Marshall-Palmer; R = 0 -> -inf
    grey = np.clip((dbz + 10.0) / 80.0, 0.0, 1.0)

    field = read_radar_file(path)
    assert field.accumulation_min == 6.0
    assert field.valid_time == valid_time
    np.testing.assert_array_equal(np.isnan(field.dbz), np.isnan(dbz))
    np.testing.assert_array_equal(np.isneginf(field.dbz), np.isneginf(dbz))
    finite = np.isfinite(dbz)
    np.testing.assert_allclose(field.dbz[finite], dbz[finite], atol=1e-4)
    # a spot value: 1 mm in 6 min = 10 mm/h = 10 log10(200 * 10^1.6) dBZ
    if (mm == 1.0).any():
        assert float(field.dbz[mm == 1.0][0]) == pytest.approx(
            10 * math.log10(200 * 10**1.6), abs=1e-4
        )

    # crop 330 centre (+ 10 margin for the disk), NaN-aware disk average, bilinear resize
    h, w = grey.shape
    top, left, r = (h - 330) // 2, (w - 330) // 2, 10
    assert top >= r and left >= r
    window = grey[top - r : top + 330 + r, left - r : left + 330 + r]
    kernel = reference_disk(r)
    valid = np.isfinite(window)
    num = ndimage.convolve(np.where(valid, window, 0.0), kernel, mode="constant")
    den = ndimage.convolve(valid.astype(np.float64), kernel, mode="constant")
    avg = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)[r:-r, r:-r]
    expected = sk_resize(avg, (100, 100), order=1, mode="edge", anti_aliasing=False)

    out, covered = normalise_dbz(field.dbz, NormParams())
    assert out.shape == (100, 100)
    assert out.dtype == np.float32
    assert covered == pytest.approx(float(valid[r:-r, r:-r].mean()))
    assert float(out.max()) > 0.2  # rain survives the chain
    # observed 7e-5, nearly all of it the kernel's coarse area estimate (see test_normalize)
    np.testing.assert_allclose(out, expected, atol=1e-4)
