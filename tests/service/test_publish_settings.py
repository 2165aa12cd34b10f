"""Publishing settings: subscribers checked against their kind, secrets kept secret."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from service.publish.subscribers import payload_kind
from service.settings import Settings
from tests.service.publish_helpers import SECRET, webhook


def test_subscribers_come_from_json_and_secrets_never_show(monkeypatch, tmp_path):
    subscribers = [
        webhook("https://hooks.example.org/nowcast?token=abc"),
        {"name": "archive", "kind": "file", "folder": str(tmp_path)},
    ]
    monkeypatch.setenv("NOWCAST_SUBSCRIBERS", json.dumps(subscribers))
    monkeypatch.setenv("NOWCAST_PUBLISH_MODE", "on_forecast")
    settings = Settings()
    hook, archive = settings.subscribers
    assert hook.secret is not None and hook.secret.get_secret_value() == SECRET
    assert payload_kind(hook) == "summary" and payload_kind(archive) == "netcdf"
    assert settings.publish_mode == "on_forecast" and settings.publish_cron == "*/6 * * * *"
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("subscriber", "message"),
    [
        (
            {"name": "hook", "kind": "webhook", "url": "https://a.example.org"},
            r"missing \['secret'\]",
        ),
        (
            {"name": "hook", "kind": "file", "folder": "/tmp/x", "url": "https://a"},
            r"not used.*url",
        ),
        ({"name": "Hook!", "kind": "file", "folder": "/tmp/x"}, "should match pattern"),
        (
            {"name": "hook", "kind": "ftp", "folder": "/tmp/x"},
            r"unknown subscriber kind 'ftp'.*webhook",
        ),
        ({**webhook("https://a.example.org"), "secret": "k3y-0123456789abcdef"}, "whsec_"),
        ({**webhook("https://a.example.org"), "secret": "whsec_c2hvcnQ="}, "24 to 64 bytes"),
        ({**webhook("https://a.example.org"), "secret": "whsec_not base64!"}, "base64"),
        ({**webhook("https://a.example.org"), "secret": "changeme-changeme-1"}, "placeholder"),
        (webhook("ftp://a.example.org"), "should match pattern"),
        ({"name": "f", "kind": "file", "folder": "/tmp/x", "payload": "csv"}, "payload"),
    ],
)
def test_a_bad_subscriber_is_refused_with_the_reason(tmp_path, subscriber, message):
    with pytest.raises(ValidationError, match=message):
        Settings(data_dir=tmp_path, subscribers=[subscriber])


def test_publishing_settings_are_checked_together(tmp_path):
    hook = webhook("https://a.example.org")
    with pytest.raises(ValidationError, match="unique"):
        Settings(data_dir=tmp_path, subscribers=[hook, hook])
    with pytest.raises(ValidationError, match="not a cron expression"):
        Settings(data_dir=tmp_path, publish_cron="every six minutes")
    with pytest.raises(ValidationError, match="not among the methods"):
        Settings(data_dir=tmp_path, methods=("persistence",))
    lock = {"publish_timeout_s": 10, "publish_backoff_s": 1, "publish_backoff_max_s": 20}
    with pytest.raises(ValidationError, match=r"publish_lock_ttl_s must exceed.*\(50 s\)"):
        Settings(data_dir=tmp_path, publish_lock_ttl_s=45, **lock)  # connect+write+read: 30 s
    assert Settings(data_dir=tmp_path, publish_lock_ttl_s=51, **lock).publish_lock_ttl_s == 51
    with pytest.raises(ValidationError, match="publish_sites"):
        Settings(data_dir=tmp_path, publish_sites=("Bad Site",))
    assert Settings(data_dir=tmp_path, http_port=8123).public_url == "http://127.0.0.1:8123"
    assert Settings(data_dir=tmp_path, public_base_url="https://n.example.org/").public_url == (
        "https://n.example.org"
    )


def test_a_refused_subscriber_error_never_echoes_its_secret_or_url(tmp_path):
    bad = {**webhook("https://hooks.example.org/x?token=T0KEN42"), "secret": "changeme-1234567890"}
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path, subscribers=[bad])
    assert "placeholder" in str(refused.value)
    assert "changeme" not in str(refused.value) and "T0KEN42" not in str(refused.value)
