"""Reliability fixtures: the service tests' small real checkpoint, shared here."""

from __future__ import annotations

from tests.service.conftest import small_checkpoint

__all__ = ["small_checkpoint"]
