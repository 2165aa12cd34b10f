"""One process-wide lock around every use of netCDF4/HDF5.

The HDF5 library that netCDF4 (and xarray's netcdf4 engine) call is not built thread-safe:
two threads reading or writing NetCDF at once can crash the process (seen: a segmentation
fault when the demo's feed wrote frames while the ingest worker read them). Every function of
this project that opens a NetCDF file holds `HDF5_LOCK` for the whole open-read-close or
write. Re-entrant, so that a locked function may call another.
"""

from __future__ import annotations

import threading

HDF5_LOCK = threading.RLock()
