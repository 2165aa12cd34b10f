"""Hostile input: the frame reader and ingest under fuzzed NetCDF files (hypothesis).

Two families of cases, each ingested through the real `Ingestor` (reader, checks, normalise,
archive, window on the embedded Redis):

- byte-level mutations of a real frame written by the project's synthetic feed writer
  (truncation, flipped bytes, overwritten and inserted blocks, zeroed blocks): every case must
  end as a clean accept or a quarantine with a reason, never another exception, never an
  ``internal_error``, and an accepted frame must be a valid grey frame;
- structured NetCDF variants written with netCDF4 (dtypes, packing, grid sizes, quantities,
  NaN holes) carrying at most one defect (huge dimensions, infinite values, negative rain,
  absurd units or reflectivities, no or broken time, no site, a 3-D field ...): a case without
  a defect must be accepted, a case with one must be quarantined with that defect's reason.

Memory stays bounded: the process's peak RSS may not grow by more than `RSS_GROWTH_LIMIT_MB`
over a whole run (a file declaring a 5000 x 5000 grid must be refused before it is loaded).
"""

from __future__ import annotations

import json
import resource
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import netCDF4
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.frame import RejectReason
from ingest.cf_writer import write_synthetic_feed
from ingest.ingestor import Ingestor
from ingest.reader import MAX_GRID_CELLS
from tests.ingest.helpers import small_settings

RSS_GROWTH_LIMIT_MB = 400
FUZZ = settings(
    max_examples=100,
    deadline=5000,  # ms per case: a hang shows as a deadline error, not a stuck suite
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same cases on every run: a failure reproduces
    database=None,
)
PER_DEFECT = settings(FUZZ, max_examples=6)  # x 19 defects (one of them: none)
OUTCOMES = {"accepted", "archived_only", "quarantined"}
_names = count()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


@pytest.fixture(scope="module")
def real_frame(tmp_path_factory) -> bytes:
    (path,) = write_synthetic_feed(
        tmp_path_factory.mktemp("feed"), 1, site_id="fz-1", shape=(96, 96), seed=5
    )
    return path.read_bytes()


@pytest.fixture
def ingestor(tmp_path, redis_conn):
    return Ingestor(small_settings(tmp_path / "data"), redis_conn)


@pytest.fixture
def tally():
    """Outcomes seen over one fuzz run (for docs/reliability.md, printed with -s)."""
    seen: dict[str, int] = {}
    yield seen
    print(f" fuzz outcomes: {json.dumps(dict(sorted(seen.items())))}")


def _check_result(result, ingestor: Ingestor, tally: dict[str, int]) -> None:
    assert result.outcome in OUTCOMES, result
    key = result.outcome if result.reason is None else f"quarantined:{result.reason.value}"
    tally[key] = tally.get(key, 0) + 1
    if result.outcome == "quarantined":
        assert result.reason is not None and result.reason is not RejectReason.INTERNAL_ERROR, (
            result
        )
        assert result.message
    else:
        frame = next(
            f for f in ingestor.window.frames(result.site_id) if f.valid_time == result.valid_time
        )
        assert frame.grey.shape == (32, 32) and frame.grey.dtype == np.float32
        assert np.isfinite(frame.grey).all()
        assert frame.grey.min() >= 0.0 and frame.grey.max() <= 1.0


# -- byte-level mutations of a real frame ------------------------------------------------------


@st.composite
def mutated(draw, raw: bytes) -> bytes:
    """One to three mutations of ``raw``: truncate, flip, overwrite, insert or zero bytes."""
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "zero"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and data:
            for pos in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=16)):
                data[pos] ^= draw(st.integers(1, 255))
        elif kind == "overwrite":
            block = draw(st.binary(min_size=1, max_size=64))
            data[at : at + len(block)] = block
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:
            end = min(len(data), at + draw(st.integers(1, 4096)))
            data[at:end] = bytes(end - at)
    return bytes(data)


@pytest.mark.timeout(240)
def test_mutated_real_frames_are_accepted_or_quarantined_with_a_reason(real_frame, ingestor, tally):
    untouched = ingestor.ingest_bytes(real_frame, "untouched.nc")
    assert untouched.outcome == "accepted"  # the seed itself is good
    rss_before = _peak_rss_mb()

    @FUZZ
    @given(data=st.data())
    def case(data):
        raw = data.draw(mutated(real_frame))
        result = ingestor.ingest_bytes(raw, f"mutant-{next(_names)}.nc")
        _check_result(result, ingestor, tally)
        if result.outcome == "quarantined":
            kept = Path(str(result_note(ingestor, result.source)).removesuffix(".reason.json"))
            assert kept.read_bytes() == raw  # quarantine keeps the bytes as received

    case()
    assert _peak_rss_mb() - rss_before < RSS_GROWTH_LIMIT_MB
    assert sum(tally.values()) >= 90
    assert len({k for k in tally if k.startswith("quarantined")}) >= 2  # the fuzz bites


def result_note(ingestor: Ingestor, source: str) -> Path:
    """The quarantine note of ``source`` (its name is the file name's tail)."""
    (note,) = [p for p in ingestor.quarantine.root.glob("*/*.reason.json") if source in p.name]
    return note


# -- structured NetCDF variants ----------------------------------------------------------------

QUANTITY = {  # name -> (standard_name, units, plausible range of values)
    "rain_rate": ("rainfall_rate", "mm h-1", (0.0, 150.0)),
    "reflectivity": ("equivalent_reflectivity_factor", "dBZ", (-32.0, 70.0)),
    "accumulation": ("precipitation_amount", "kg m-2", (0.0, 20.0)),
}
DEFECTS: dict[str | None, RejectReason | None] = {
    None: None,
    "absurd_units": RejectReason.WRONG_UNITS,
    "unknown_standard_name": RejectReason.NO_PRECIPITATION_VARIABLE,
    "one_dimensional": RejectReason.NO_PRECIPITATION_VARIABLE,
    "three_dimensional": RejectReason.BAD_SHAPE,
    "huge_dimensions": RejectReason.BAD_SHAPE,
    "all_missing": RejectReason.ALL_NAN,
    "infinite_values": RejectReason.BAD_VALUES,
    "negative_rain": RejectReason.BAD_VALUES,
    "absurd_reflectivity": RejectReason.BAD_VALUES,
    "no_time": RejectReason.NO_VALID_TIME,
    "broken_time_units": RejectReason.NO_VALID_TIME,
    "nan_time": RejectReason.NO_VALID_TIME,
    "overflowing_time": RejectReason.NO_VALID_TIME,
    "no_interval": RejectReason.NO_VALID_TIME,
    "no_site": RejectReason.NO_SITE,
    "unusable_site": RejectReason.NO_SITE,
    "future_time": RejectReason.FUTURE_TIME,
    "grid_smaller_than_crop": RejectReason.WRONG_GRID,
}
ABSURD_UNITS = ["m s-1", "furlongs per fortnight", "", "MM H-1", "mm/h ", "dB", "K", "\u00b5m s-1"]


@dataclass(frozen=True)
class Variant:
    quantity: str
    dtype: str  # float32, float64, int16 (packed), int32, uint8
    shape: tuple[int, int]
    nan_fraction: float
    seed: int
    valid_time: datetime
    defect: str | None
    units: str  # used by absurd_units


@st.composite
def variants(draw, defect: str | None) -> Variant:
    quantity = draw(st.sampled_from(sorted(QUANTITY)))
    if defect == "absurd_reflectivity":
        quantity = "reflectivity"
    if defect in ("negative_rain", "no_interval"):
        quantity = draw(st.sampled_from(["rain_rate", "accumulation"]))
        if defect == "no_interval":
            quantity = "accumulation"
    dtype_choices = ["float32", "float64", "int16", "int32"]
    if quantity != "reflectivity":
        dtype_choices.append("uint8")
    if defect in ("infinite_values", "negative_rain", "absurd_reflectivity"):
        dtype_choices = ["float32", "float64"]
    valid_time = draw(
        st.datetimes(datetime(1990, 1, 1), datetime(2026, 1, 1), timezones=st.just(UTC))
    ).replace(microsecond=0)
    return Variant(
        quantity=quantity,
        dtype=draw(st.sampled_from(dtype_choices)),
        shape=(draw(st.integers(64, 110)), draw(st.integers(64, 110))),
        nan_fraction=draw(st.floats(0.0, 0.5)),
        seed=draw(st.integers(0, 2**16)),
        valid_time=valid_time,
        defect=defect,
        units=draw(st.sampled_from(ABSURD_UNITS)),
    )


def _values(v: Variant) -> np.ndarray:
    rng = np.random.default_rng(v.seed)
    low, high = QUANTITY[v.quantity][2]
    values = rng.uniform(low, high, v.shape)
    values[rng.random(v.shape) < v.nan_fraction] = np.nan
    if v.defect == "all_missing":
        values[:] = np.nan
    elif v.defect == "infinite_values":
        values.flat[rng.integers(0, values.size, 3)] = rng.choice([np.inf, -np.inf])
    elif v.defect == "negative_rain":
        values[: max(2, v.shape[0] // 10)] = -rng.uniform(0.5, 50.0)
    elif v.defect == "absurd_reflectivity":
        # a tenth of the grid: beyond the 1 % of cells that are read as nodata and counted
        values[: max(2, v.shape[0] // 10)] = rng.choice([400.0, -1e6, 1e30])
    return values


def _seconds(t: datetime) -> float:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()


def write_variant(path: Path, v: Variant, site_id: str) -> bytes:
    """One NetCDF4 file for ``v`` written with netCDF4 (not the project's writer)."""
    standard_name, units, _ = QUANTITY[v.quantity]
    values = _values(v)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        if v.defect == "no_site":
            pass
        elif v.defect == "unusable_site":
            ds.site_id = "///"
        else:
            ds.site_id = site_id
        ny, nx = (5000, 5000) if v.defect == "huge_dimensions" else v.shape
        if v.defect == "grid_smaller_than_crop":
            ny, nx = 40, 40
            values = values[:40, :40]
        ds.createDimension("y", ny)
        ds.createDimension("x", nx)
        dims: tuple[str, ...] = ("y", "x")
        if v.defect == "three_dimensional":
            ds.createDimension("level", 2)
            dims = ("level", "y", "x")
        elif v.defect == "one_dimensional":
            dims = ("x",)
        fill = {"float32": -9999.0, "float64": -9999.0, "int16": -32768, "int32": -1, "uint8": 255}
        var = ds.createVariable(
            "field", v.dtype, dims, zlib=True, fill_value=fill[v.dtype], chunksizes=None
        )
        var.standard_name = (
            "air_temperature" if v.defect == "unknown_standard_name" else (standard_name)
        )
        var.units = v.units if v.defect == "absurd_units" else units
        if v.dtype == "int16":  # packed: netCDF4 applies scale_factor on write and read
            var.scale_factor = 0.01
            var.add_offset = 0.0
        if v.defect != "huge_dimensions":
            missing = np.isnan(values)  # written as _FillValue; inf stays inf (float only)
            data = np.where(missing, 0.0, values)
            if v.dtype in ("int32", "uint8"):
                data = np.round(data)
            masked = np.ma.masked_array(data, mask=missing)
            if dims == ("x",):
                var[:] = masked[0]
            elif len(dims) == 3:
                var[0] = masked
                var[1] = masked
            else:
                var[:] = masked
        _write_time(ds, v)
    return path.read_bytes()


def _write_time(ds: netCDF4.Dataset, v: Variant) -> None:
    if v.defect == "no_time":
        return
    valid = v.valid_time
    if v.defect == "future_time":
        valid = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    time = ds.createVariable("valid_time", "f8", ())
    time.standard_name = "time"
    time.units = "seconds since 1970-01-01 00:00:00"
    time.calendar = "standard"
    if v.defect == "broken_time_units":
        time.units = "fortnights since the flood"
    value = _seconds(valid)
    if v.defect == "nan_time":
        value = float("nan")
    elif v.defect == "overflowing_time":
        value = 1e300
    time.assignValue(value)
    if v.quantity == "accumulation" and v.defect != "no_interval":
        start = ds.createVariable("start_time", "f8", ())
        start.standard_name = "time"
        start.units = time.units if v.defect != "broken_time_units" else "seconds since 1970-1-1"
        start.assignValue(_seconds(valid - timedelta(minutes=6)))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("defect", list(DEFECTS))
def test_structured_variants_end_as_accept_or_the_reason_of_their_defect(
    defect, ingestor, tmp_path, tally
):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    rss_before = _peak_rss_mb()
    expected = DEFECTS[defect]

    @PER_DEFECT
    @given(variant=variants(defect))
    def case(variant):
        n = next(_names)
        raw = write_variant(folder / f"v{n}.nc", variant, f"fz-{n}")
        result = ingestor.ingest_bytes(raw, f"variant-{n}.nc")
        _check_result(result, ingestor, tally)
        if expected is None:
            assert result.outcome == "accepted", (variant, result)
        else:
            assert result.reason is expected, (variant, result)

    case()
    assert _peak_rss_mb() - rss_before < RSS_GROWTH_LIMIT_MB
    assert sum(tally.values()) == PER_DEFECT.max_examples
    assert MAX_GRID_CELLS < 5000 * 5000  # the huge grid really is over the limit


@pytest.fixture(scope="module")
def odim_frame() -> bytes:
    """A good ODIM_H5 composite (tests.ingest.odim_writer): rain in a square, nodata rows."""
    from tests.ingest.odim_writer import odim_bytes

    stored = np.zeros((96, 96), dtype=np.uint16)
    stored[30:60, 30:60] = 200
    stored[-4:, :] = 65535
    return odim_bytes(stored, datetime(2026, 1, 1, tzinfo=UTC), source="NOD:fzodim")


@pytest.mark.timeout(240)
def test_mutated_odim_products_are_accepted_or_quarantined_with_a_reason(
    odim_frame, ingestor, tally
):
    assert ingestor.ingest_bytes(odim_frame, "untouched.h5").outcome == "accepted"

    @FUZZ
    @given(data=st.data())
    def case(data):
        raw = data.draw(mutated(odim_frame))
        _check_result(ingestor.ingest_bytes(raw, f"mutant-{next(_names)}.h5"), ingestor, tally)

    case()
    assert sum(tally.values()) >= 90
    assert len({k for k in tally if k.startswith("quarantined")}) >= 2  # the fuzz bites
