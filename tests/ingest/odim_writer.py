"""Small ODIM_H5 files for the tests, written with h5py as a radar centre writes them."""

from __future__ import annotations

import io
from datetime import datetime

import h5py
import numpy as np

LAEA = "+proj=laea +lat_0=55.0 +lon_0=10.0 +x_0=0 +y_0=0 +units=m +ellps=WGS84"


def odim_bytes(
    raw: np.ndarray,
    valid: datetime,
    quantity: str = "RATE",
    gain: float | None = 0.01,
    offset: float | None = 0.0,
    nodata: float | None = 65535.0,
    undetect: float | None = 0.0,
    obj: str = "COMP",
    source: str = "NOD:tsrad,WMO:01234",
    projdef: str | None = LAEA,
    scale_m: float = 1000.0,
    corner: tuple[float, float] = (8.0, 56.0),
    interval_min: float | None = None,
    data_group: str = "data",
) -> bytes:
    """One ODIM_H5 product with ``raw`` (H, W) stored values in ``dataset1/data1``; a
    ``gain``, ``offset``, ``nodata`` or ``undetect`` of None leaves that attribute out."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.attrs["Conventions"] = np.bytes_("ODIM_H5/V2_2")
        what = h5.create_group("what")
        for key, value in (("object", obj), ("source", source), ("version", "H5rad 2.2"),
                           ("date", f"{valid:%Y%m%d}"), ("time", f"{valid:%H%M%S}")):  # fmt: skip
            what.attrs[key] = np.bytes_(value)
        where = h5.create_group("where")
        if projdef is not None:
            where.attrs["projdef"] = np.bytes_(projdef)
        where.attrs["xsize"], where.attrs["ysize"] = raw.shape[1], raw.shape[0]
        where.attrs["xscale"] = where.attrs["yscale"] = scale_m
        where.attrs["UL_lon"], where.attrs["UL_lat"] = corner
        data = h5.create_group("dataset1/data1")
        data.create_dataset(data_group, data=raw)
        dwhat = data.create_group("what")
        dwhat.attrs["quantity"] = np.bytes_(quantity)
        for key, value in (("gain", gain), ("offset", offset), ("nodata", nodata),
                           ("undetect", undetect)):  # fmt: skip
            if value is not None:
                dwhat.attrs[key] = value
        if interval_min is not None:
            from datetime import timedelta

            start = valid - timedelta(minutes=interval_min)
            times = {"start": start, "end": valid}
            for edge, t in times.items():
                dwhat.attrs[f"{edge}date"] = np.bytes_(f"{t:%Y%m%d}")
                dwhat.attrs[f"{edge}time"] = np.bytes_(f"{t:%H%M%S}")
    return buffer.getvalue()
