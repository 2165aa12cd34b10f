"""A forecast as a Cloud-Optimized GeoTIFF: rain rate (mm/h) per lead, in the site's CRS.

All leads as float32 bands (band k = lead k; its description says the lead and valid time),
or one lead. NaN is nodata. Written with rasterio (GDAL's COG driver) in memory, readable by
any GDAL tool. Only for a georeferenced forecast.
"""

from __future__ import annotations

import numpy as np

from service.forecast import Forecast


def forecast_to_geotiff(forecast: Forecast, lead: int | None = None) -> bytes:
    """The COG bytes of all leads (``lead`` None) or of the 1-based ``lead``.

    Raises ValueError without georeference or for a lead the forecast does not have.
    """
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as copy_dataset
    from rasterio.transform import Affine

    georef = forecast.georef
    if georef is None:
        raise ValueError(f"site {forecast.site_id} has no georeference: no GeoTIFF")
    rain = forecast.rain_mmh().astype(np.float32)
    leads = list(range(1, forecast.n_leads + 1)) if lead is None else [lead]
    if not all(1 <= k <= forecast.n_leads for k in leads):
        raise ValueError(f"lead must be 1..{forecast.n_leads}, got {lead}")
    profile = {
        "driver": "GTiff",
        "width": georef.nx,
        "height": georef.ny,
        "count": len(leads),
        "dtype": "float32",
        "crs": rasterio.crs.CRS.from_wkt(georef.crs_wkt),
        "transform": Affine(*georef.transform()),
        "nodata": float("nan"),
    }
    with MemoryFile() as plain, MemoryFile() as cog:
        with plain.open(**profile) as dataset:
            for band, k in enumerate(leads, start=1):
                dataset.write(rain[k - 1], band)
                minutes, valid = forecast.lead_minutes[k - 1], forecast.valid_times[k - 1]
                text = f"lead {k} (+{minutes:g} min), valid {valid:%Y-%m-%dT%H:%MZ}"
                dataset.set_band_description(band, text)
            dataset.update_tags(
                units="mm h-1",
                site=forecast.site_id,
                method=forecast.method,
                model_version=forecast.model_version,
                issue_time=forecast.issue_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        with plain.open() as source:
            copy_dataset(source, cog.name, driver="COG", COMPRESS="DEFLATE")
        return bytes(cog.read())
