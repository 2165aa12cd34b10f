"""Forecasts as files for people and other systems: CF-NetCDF (`netcdf`), PNG and GIF (`png`).

Each writer is a pure function of a `service.forecast.Forecast` returning bytes; where the
bytes go (HTTP response, object store, disk) is the caller's business.
"""
