"""The documentation keeps up with the code: every setting is described, the generated
settings reference is current, and the relative links of the indexes lead to files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.settings import Settings
from service.settings_doc import COMMAND, render_settings_reference

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_DOC = ROOT / "docs" / "settings.md"
LINKED_DOCS = ("README.md", "docs/README.md", "docs/publishing.md", "docs/settings.md")
# [text](target) and ![alt](target); the target ends at a space (a title follows) or ")"
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def relative_links(markdown: str) -> list[str]:
    """The link targets of ``markdown`` outside code blocks that name a file of this
    repository (no scheme, not a bare #anchor), without their #fragment."""
    text = CODE_BLOCK.sub("", markdown)
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def test_every_setting_has_a_description():
    missing = [
        name
        for name, field in Settings.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert not missing, f"settings without a description= in their Field(...): {missing}"


def test_the_settings_reference_is_up_to_date():
    expected = render_settings_reference()
    actual = SETTINGS_DOC.read_text() if SETTINGS_DOC.exists() else ""
    assert actual == expected, (
        f"docs/settings.md is out of date with the settings classes; regenerate it "
        f"from the repository root with: {COMMAND}"
    )


def test_the_reference_lists_every_setting():
    text = render_settings_reference()
    for name in Settings.model_fields:
        env = "REDIS_URL" if name == "redis_url" else f"NOWCAST_{name.upper()}"
        assert f"`{env}`" in text, name


def test_link_parsing_keeps_files_and_skips_urls_anchors_and_code():
    markdown = (
        "[a](docs/x.md) ![b](img.png) [c](https://example.org/y) [d](#top) "
        "[e](settings.md#publishing) [f](mailto:someone@example.org)\n"
        "```\n[g](not-a-link.md)\n```\n"
    )
    assert relative_links(markdown) == ["docs/x.md", "img.png", "settings.md"]


@pytest.mark.parametrize("document", LINKED_DOCS)
def test_relative_links_point_to_existing_files(document: str):
    path = ROOT / document
    broken = [
        target for target in relative_links(path.read_text()) if not (path.parent / target).exists()
    ]
    assert not broken, f"{document} links to missing files: {broken}"
