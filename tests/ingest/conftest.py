"""Fixtures of the ingest tests."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ingest.normalize_reference import reference_disk


@pytest.fixture(scope="module")
def ref_kernel10() -> np.ndarray:
    """The radius-10 disk kernel of the reference code (float64, sum 1)."""
    return reference_disk(10)
