"""Service settings: methods checked against the registry, keys kept secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.settings import Settings


def test_unknown_method_is_refused_naming_the_valid_ones(monkeypatch):
    monkeypatch.setenv("NOWCAST_METHODS", '["convlstm", "rover9"]')
    with pytest.raises(ValidationError, match=r"rover9.*valid.*persistence"):
        Settings()


def test_api_keys_come_from_json_and_never_show_in_repr(monkeypatch):
    monkeypatch.setenv("NOWCAST_API_KEYS", '["s3cret-key-1", "s3cret-key-2"]')
    settings = Settings()
    assert [k.get_secret_value() for k in settings.api_keys] == ["s3cret-key-1", "s3cret-key-2"]
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())


def test_the_products_issuer_is_configurable_and_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("NOWCAST_PRODUCT_CONTACT_EMAIL", "radar-desk@met.example.org")
    monkeypatch.setenv("NOWCAST_PRODUCT_INSTITUTION", "Example Met Service")
    settings = Settings(data_dir=tmp_path)
    assert settings.product_contact_email == "radar-desk@met.example.org"
    assert settings.product_institution == "Example Met Service"
    for bad in ("not an address", "a@b", "two@@at.example.org"):
        with pytest.raises(ValidationError, match="product_contact_email"):
            Settings(data_dir=tmp_path, product_contact_email=bad)
    with pytest.raises(ValidationError, match="product_institution"):
        Settings(data_dir=tmp_path, product_institution="")
