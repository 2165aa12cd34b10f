"""Shared by the model tests: the `nowcast` command line on a small grid."""

from __future__ import annotations

import os
import subprocess
import sys

SMALL_GRID_ENV = {
    "NOWCAST_CROP_CELLS": "64",
    "NOWCAST_TARGET_CELLS": "32",
    "NOWCAST_DISK_RADIUS_CELLS": "3",
}


def run_cli(*args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    """`python -m service.cli ARGS` with frames normalised to 32 x 32 cells."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env={**os.environ, **SMALL_GRID_ENV},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
