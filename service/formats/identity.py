"""Who issues the products, as their metadata says it (`service.formats.netcdf`)."""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import CoreSettings


@dataclass(frozen=True)
class ProductIdentity:
    """Who issues the products: ``url`` the API's public URL (ACDD creator and publisher
    URL), ``institution``, ``contact_email`` (None: left out) and ``license``."""

    url: str | None = None
    institution: str = "nowcast precipitation nowcasting service"
    contact_email: str | None = None
    license: str = "Use at your own risk; the radar data keep their providers' licences."

    @classmethod
    def from_settings(cls, settings: CoreSettings) -> ProductIdentity:
        return cls(
            settings.public_url,
            settings.product_institution,
            settings.product_contact_email,
            settings.product_license,
        )
