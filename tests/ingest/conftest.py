"""Fixtures of the ingest tests."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.ingestor import Ingestor
from service.settings import Settings
from tests.ingest.helpers import small_settings
from tests.ingest.normalize_reference import reference_disk


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Small-grid settings under this test's folder (a test module may give its own)."""
    return small_settings(tmp_path / "data")


@pytest.fixture
def ingestor(settings, redis_conn) -> Ingestor:
    """An `Ingestor` on ``settings`` and the test's clean Redis."""
    return Ingestor(settings, redis_conn)


@pytest.fixture(scope="module")
def ref_kernel10() -> np.ndarray:
    """The radius-10 disk kernel of the reference code (float64, sum 1)."""
    return reference_disk(10)
