"""The import layers (pyproject.toml, [tool.importlinter]): core at the bottom, then ingest,
model and service; nothing imports upward and no sibling packages or modules import each
other in a cycle. Checked by import-linter on the real source tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_imports_run_down_the_layers_and_have_no_cycles():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is a dev dependency (pip install -e '.[dev]')"
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "2 kept, 0 broken" in report, report


def test_the_core_imports_nothing_above_it():
    for path in (ROOT / "core").glob("*.py"):
        text = path.read_text()
        for upper in ("ingest", "model", "service"):
            assert f"from {upper}" not in text and f"import {upper}" not in text, path
