"""ODIM_H5 (OPERA/EUMETNET) Cartesian products: composites (``object`` COMP) and single-radar
images (IMAGE), read with h5py.

ODIM_H5 v2 information model: ``what``/``where``/``how`` groups at the root, data in
``datasetN/dataN/data`` whose ``what`` (data level, else dataset level) gives ``quantity``,
``gain``, ``offset``, ``nodata`` (outside coverage: NaN) and ``undetect`` (covered, no echo:
0 mm/h, or `NO_ECHO_DBZ`). Quantities read: RATE (mm/h), ACRR (mm over the product's
interval, ``startdate``/``starttime`` to ``enddate``/``endtime``), DBZH and TH (dBZ), in that
order of preference. The valid time is the root ``what/date`` + ``time`` (else the data's
``enddate``/``endtime``); the site id comes from ``what/source`` (NOD, else ORG, WMO, RAD,
PLC); the grid from ``where``: ``projdef`` (a PROJ string), ``xsize``/``ysize``,
``xscale``/``yscale`` (m) and the upper-left corner ``UL_lon``/``UL_lat`` (the outer corner of
the first pixel). Anything malformed raises `core.frame.FrameRejected` with the reason.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from core.frame import MAX_GRID_CELLS, FrameRejected, RejectReason
from core.georef import GridGeoref

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
NO_ECHO_DBZ = -32.0
"""Reflectivity written where ODIM says ``undetect`` (covered, no echo)."""

QUANTITIES = {  # ODIM quantity -> CF standard_name, in order of preference
    "RATE": "rainfall_rate",
    "DBZH": "equivalent_reflectivity_factor",
    "TH": "equivalent_reflectivity_factor",
    "ACRR": "precipitation_amount",
}
UNITS = {"rainfall_rate": "mm h-1", "equivalent_reflectivity_factor": "dBZ",
         "precipitation_amount": "mm"}  # fmt: skip
SOURCE_KEYS = ("NOD", "ORG", "WMO", "RAD", "PLC")
OBJECTS = ("COMP", "IMAGE")


@dataclass(frozen=True)
class OdimProduct:
    """One ODIM_H5 Cartesian product: values (H, W) in ``units`` of CF ``standard_name``."""

    values: NDArray[np.float32]
    standard_name: str
    units: str
    valid_time: datetime
    accumulation_min: float | None
    site_id: str | None  # raw, before slugifying; None when ``what/source`` names none
    georef: GridGeoref | None


def is_odim(raw: bytes) -> bool:
    """Whether ``raw`` is an HDF5 file whose root says ``Conventions`` ODIM_H5."""
    if not raw.startswith(HDF5_SIGNATURE):
        return False
    import h5py

    try:
        with h5py.File(io.BytesIO(raw), "r") as h5:
            return _text(h5.attrs.get("Conventions", b"")).startswith("ODIM_H5")
    except Exception:  # a corrupt HDF5 file fails in many ways (OSError, OverflowError ...)
        return False


def peek_odim(path: Path) -> tuple[datetime | None, str | None] | None:
    """(valid time, raw site id) of an ODIM_H5 file without reading its data, either None
    where unknown; None for a file that is no ODIM_H5 (NetCDF-4 is HDF5 too)."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            if not _text(h5.attrs.get("Conventions", b"")).startswith("ODIM_H5"):
                return None
            root_what = _attrs(h5, "what")
            try:
                valid: datetime | None = _valid_time(root_what, {})
            except FrameRejected:
                valid = None
            return valid, _source_id(_text(root_what.get("source", "")))
    except Exception:  # unreadable: the NetCDF peek (then the ingest) says why
        return None


def read_odim(raw: bytes, name: str) -> OdimProduct:
    """The precipitation of an ODIM_H5 Cartesian product held in memory."""
    import h5py

    try:
        h5 = h5py.File(io.BytesIO(raw), "r")
    except Exception as exc:  # a corrupt HDF5 file fails in many ways
        raise FrameRejected(RejectReason.UNREADABLE, f"cannot open {name} as HDF5: {exc}") from exc
    with h5:
        root_what = _attrs(h5, "what")
        kind = _text(root_what.get("object", ""))
        if kind not in OBJECTS:
            raise FrameRejected(
                RejectReason.NO_PRECIPITATION_VARIABLE,
                f"ODIM object {kind or 'missing'!r}: only Cartesian {'/'.join(OBJECTS)} "
                "products are read (not polar volumes or scans)",
            )
        quantity, path, what = _find_data(h5)
        _check_size(h5[path].shape, path)  # from the metadata, before reading any data
        values = _physical(h5[path][...], what, path)
        valid_time = _valid_time(root_what, what)
        accumulation_min = _interval_min(what) if quantity == "ACRR" else None
        standard_name = QUANTITIES[quantity]
        return OdimProduct(
            values=values,
            standard_name=standard_name,
            units=UNITS[standard_name],
            valid_time=valid_time,
            accumulation_min=accumulation_min,
            site_id=_source_id(_text(root_what.get("source", ""))),
            georef=_georef(_attrs(h5, "where"), values.shape),
        )


def _find_data(h5: object) -> tuple[str, str, dict[str, object]]:
    """(ODIM quantity, path of its ``data`` array, merged ``what``) of the preferred quantity."""
    import h5py

    assert isinstance(h5, h5py.File)
    found: dict[str, tuple[str, dict[str, object]]] = {}
    for dataset in sorted(k for k in h5 if k.startswith("dataset")):
        for data in sorted(k for k in h5[dataset] if k.startswith("data")):
            what = {**_attrs(h5, "what"), **_attrs(h5[dataset], "what"),
                    **_attrs(h5[dataset][data], "what")}  # fmt: skip
            quantity = _text(what.get("quantity", ""))
            array = h5[dataset][data].get("data")
            if quantity in QUANTITIES and isinstance(array, h5py.Dataset):
                found.setdefault(quantity, (array.name, what))
    for quantity in QUANTITIES:
        if quantity in found:
            path, what = found[quantity]
            return quantity, path, what
    raise FrameRejected(
        RejectReason.NO_PRECIPITATION_VARIABLE,
        f"no ODIM dataset holds one of {list(QUANTITIES)}",
    )


def _check_size(shape: tuple[int, ...], path: str) -> None:
    """Refuse a dataset that is not one 2-D grid of at most `MAX_GRID_CELLS` cells."""
    if len(shape) != 2 or min(shape) < 2:
        raise FrameRejected(RejectReason.BAD_SHAPE, f"{path} has shape {shape}")
    if shape[0] * shape[1] > MAX_GRID_CELLS:
        raise FrameRejected(
            RejectReason.BAD_SHAPE,
            f"{path} grid {shape[0]} x {shape[1]} exceeds {MAX_GRID_CELLS:,} cells",
        )


def _physical(raw_values: np.ndarray, what: dict[str, object], path: str) -> NDArray[np.float32]:
    """gain * raw + offset; ``nodata`` -> NaN; ``undetect`` -> no rain (0 or `NO_ECHO_DBZ`).

    ODIM_H5 requires all four attributes: without ``gain``/``offset`` raw counts would be read
    as physical values, and without ``nodata``/``undetect`` uncovered cells as rain, so such a
    product is refused.
    """
    absent = [k for k in ("gain", "offset", "nodata", "undetect") if k not in what]
    if absent:
        raise FrameRejected(
            RejectReason.BAD_VALUES,
            f"{path}: what/{', what/'.join(absent)} missing (ODIM_H5 requires gain, offset, "
            "nodata and undetect to read the data)",
        )
    try:
        gain, offset = float(what["gain"]), float(what["offset"])  # type: ignore[arg-type]
        nodata, undetect = float(what["nodata"]), float(what["undetect"])  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise FrameRejected(
            RejectReason.BAD_VALUES, f"{path}: bad gain/offset/nodata/undetect ({exc})"
        ) from exc
    if not (np.isfinite(gain) and np.isfinite(offset)) or gain == 0.0:
        raise FrameRejected(RejectReason.BAD_VALUES, f"{path}: gain {gain}, offset {offset}")
    quantity = _text(what.get("quantity", ""))
    no_echo = NO_ECHO_DBZ if quantity in ("DBZH", "TH") else 0.0
    with np.errstate(over="ignore"):  # an absurd gain gives inf, which the reader refuses
        values = (raw_values.astype(np.float64) * gain + offset).astype(np.float32)
    values[raw_values == undetect] = no_echo
    values[raw_values == nodata] = np.nan
    return values


def _valid_time(root_what: dict[str, object], what: dict[str, object]) -> datetime:
    for date_key, time_key, source in (("date", "time", root_what), ("enddate", "endtime", what)):
        if date_key in source and time_key in source:
            stamp = _text(source[date_key]) + _text(source[time_key])
            try:
                return datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
            except ValueError:
                continue
    raise FrameRejected(RejectReason.NO_VALID_TIME, "no what/date and what/time in the product")


def _interval_min(what: dict[str, object]) -> float:
    try:
        start = datetime.strptime(
            _text(what["startdate"]) + _text(what["starttime"]), "%Y%m%d%H%M%S"
        )
        end = datetime.strptime(_text(what["enddate"]) + _text(what["endtime"]), "%Y%m%d%H%M%S")
    except (KeyError, ValueError) as exc:
        raise FrameRejected(
            RejectReason.NO_VALID_TIME, f"an ACRR product needs its start and end times ({exc})"
        ) from exc
    minutes = (end - start).total_seconds() / 60
    if minutes <= 0:
        raise FrameRejected(RejectReason.NO_VALID_TIME, f"ACRR interval of {minutes:g} min")
    return minutes


def _source_id(source: str) -> str | None:
    """The site id in ``what/source`` (``NOD:fivan,WMO:02775`` -> ``fivan``; ``ORG:247`` ->
    ``org-247``): NOD first, else the first of ORG, WMO, RAD, PLC prefixed by its key."""
    parts = dict(p.split(":", 1) for p in source.split(",") if ":" in p)
    if parts.get("NOD"):
        return parts["NOD"]
    for key in SOURCE_KEYS[1:]:
        if parts.get(key):
            return f"{key.lower()}-{parts[key]}"
    return None


def _georef(where: dict[str, object], shape: tuple[int, ...]) -> GridGeoref | None:
    """The grid in ``where``; None when ``projdef`` or the corner is missing or unusable."""
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError

    try:
        crs = CRS.from_proj4(_text(where["projdef"]))
        xscale, yscale = float(where["xscale"]), float(where["yscale"])  # type: ignore[arg-type]
        corner = float(where["UL_lon"]), float(where["UL_lat"])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError, CRSError):
        return None
    x_edge, y_edge = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(*corner)
    if not (np.isfinite(x_edge) and np.isfinite(y_edge)) or xscale <= 0 or yscale <= 0:
        return None
    ny, nx = shape
    return GridGeoref(
        crs.to_wkt(), x0_m=x_edge + xscale / 2, dx_m=xscale, y0_m=y_edge - yscale / 2,
        dy_m=-yscale, nx=nx, ny=ny,
    )  # fmt: skip


def _attrs(group: object, name: str) -> dict[str, object]:
    import h5py

    assert isinstance(group, h5py.Group)
    child = group.get(name)
    return dict(child.attrs) if isinstance(child, h5py.Group) else {}


def _text(value: object) -> str:
    if isinstance(value, bytes | np.bytes_):
        return value.decode(errors="replace").strip("\x00 ")
    return str(value)
