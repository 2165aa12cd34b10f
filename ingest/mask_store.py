"""Where fitted noise masks live: a file per version on disk and the current one in Redis.

Files: ``<masks>/<site>/<version>.npy`` (``numpy.save`` of a bool array, loaded with
``allow_pickle=False``) and ``<version>.json`` (metadata); ``current.json`` names the version
in force. Redis: hash ``nowcast:mask:{site}`` with version, shape and the packed bits.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import redis

from core import keys
from core.files import write_atomic
from ingest.noise_mask import NoiseMask


class MaskStore:
    def __init__(self, connection: redis.Redis, root: Path) -> None:
        self._redis = connection
        self.root = root
        self._cache: dict[str, tuple[str, np.ndarray]] = {}

    def save(self, mask: NoiseMask) -> Path:
        """Write the mask file and metadata, then make it current in Redis and on disk."""
        folder = self.root / mask.site_id
        buffer = io.BytesIO()
        np.save(buffer, mask.mask.astype(bool), allow_pickle=False)
        path = folder / f"{mask.version}.npy"
        write_atomic(path, buffer.getvalue())
        meta = {
            "site_id": mask.site_id,
            "version": mask.version,
            "shape": list(mask.mask.shape),
            "masked_cells": int(mask.mask.sum()),
            "months": list(mask.months),
            "n_frames": mask.n_frames,
        }
        write_atomic(folder / f"{mask.version}.json", json.dumps(meta, indent=2).encode())
        write_atomic(folder / "current.json", json.dumps({"version": mask.version}).encode())
        self._publish(mask.site_id, mask.version, mask.mask)
        return path

    def _publish(self, site_id: str, version: str, mask: np.ndarray) -> None:
        self._redis.hset(
            keys.noise_mask(site_id),
            mapping={
                "version": version,
                "shape": f"{mask.shape[0]}x{mask.shape[1]}",
                "bits": np.packbits(mask.astype(bool)).tobytes(),
            },
        )

    def current(self, site_id: str) -> tuple[str, np.ndarray] | None:
        """(version, mask) in force for the site, or None when none was fitted.

        Reads Redis (cheap version check, cached bits); falls back to the file and re-publishes
        it when Redis lost it.
        """
        version = self._redis.hget(keys.noise_mask(site_id), "version")
        if version is None:
            return self._restore_from_file(site_id)
        name = version.decode()
        cached = self._cache.get(site_id)
        if cached and cached[0] == name:
            return cached
        raw = self._redis.hmget(keys.noise_mask(site_id), "shape", "bits")
        h, w = (int(v) for v in raw[0].decode().split("x"))
        bits = np.frombuffer(raw[1], dtype=np.uint8)
        mask = np.unpackbits(bits, count=h * w).reshape(h, w).astype(bool)
        self._cache[site_id] = (name, mask)
        return self._cache[site_id]

    def _restore_from_file(self, site_id: str) -> tuple[str, np.ndarray] | None:
        pointer = self.root / site_id / "current.json"
        if not pointer.is_file():
            return None
        version = str(json.loads(pointer.read_text())["version"])
        mask = np.load(self.root / site_id / f"{version}.npy", allow_pickle=False).astype(bool)
        self._publish(site_id, version, mask)
        self._cache[site_id] = (version, mask)
        return self._cache[site_id]
