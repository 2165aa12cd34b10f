"""Checkpoints that carry their architecture: safetensors weights + JSON metadata.

A checkpoint is one ``.safetensors`` file. Its tensors are the model's ``state_dict``; its
metadata (str -> str) holds:

- ``format`` = ``"nowcast.convlstm"`` and ``format_version`` (`FORMAT_VERSION`);
- ``config``: JSON of `NetworkConfig.to_dict`, from which the network is rebuilt;
- ``meta``: JSON of the caller's dict: normalisation parameters and version, training data
  description, validation scores, training step / epoch, ... (see `save_checkpoint`);
- ``created_utc``: ISO 8601 time of writing;
- ``tensors_sha256``: a digest of every tensor's name, dtype, shape and bytes, so a file that
  was altered after writing is refused.

Loading never unpickles anything (no ``torch.load``); the file is written atomically (temp file
in the same folder, fsync, ``os.replace``) so a reader never sees a half-written checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from model.nets.architectures import build_model
from model.nets.config import NetworkConfig
from model.nets.network import FrameSequenceNetwork

FORMAT_NAME = "nowcast.convlstm"
FORMAT_VERSION = 1


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _tensors_digest(tensors: dict[str, Tensor]) -> str:
    """SHA-256 over the sorted tensors' names, dtypes, shapes and raw bytes."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(
    path: str | os.PathLike[str],
    model: FrameSequenceNetwork,
    config: NetworkConfig,
    meta: dict[str, Any],
) -> Path:
    """Write ``model``'s weights, ``config`` and ``meta`` to ``path`` atomically.

    Args:
        path: destination ``.safetensors`` file; its folder is created if missing; an existing
            file is replaced only once the new one is complete on disk.
        model: the network; it must have been built from ``config``.
        config: the architecture, stored so `load_checkpoint` can rebuild the network.
        meta: JSON-serialisable dict (numpy scalars/arrays and paths are converted), expected
            to hold e.g. ``normalisation`` (params + ``version``), ``training_data``,
            ``validation`` scores, ``epoch`` / ``step``.

    Returns:
        The path written.
    """
    path = Path(path)
    if model.config != config:
        raise ValueError(f"model was built from {model.config}, not from {config}")
    if not isinstance(meta, dict):
        raise ValueError(f"meta must be a dict, got {type(meta).__name__}")
    try:
        meta_json = json.dumps(meta, default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise ValueError(f"meta is not JSON-serialisable: {error}") from error
    tensors = {
        name: tensor.detach().to("cpu").contiguous() for name, tensor in model.state_dict().items()
    }
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(config.to_dict(), sort_keys=True),
        "meta": meta_json,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "tensors_sha256": _tensors_digest(tensors),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); keep the replaced file's mode, else rw-r--r--
    os.chmod(tmp_name, path.stat().st_mode & 0o777 if path.exists() else 0o644)
    try:
        save_file(tensors, tmp_name, metadata=metadata)
        fd = os.open(tmp_name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_config(path: str | os.PathLike[str]) -> NetworkConfig:
    """The architecture stored in the checkpoint at ``path``, without loading its weights.

    Raises ValueError when the file is not a checkpoint of this format (FileNotFoundError
    when there is none); `load_checkpoint` does the full checks.
    """
    metadata, _ = _read(Path(path), tensors=False)
    try:
        return NetworkConfig.from_dict(json.loads(metadata["config"]))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: invalid config in the metadata: {error}") from error


def _read(path: Path, tensors: bool) -> tuple[dict[str, str], dict[str, Tensor]]:
    """(metadata, tensors if asked) of a checkpoint of this format; see `load_checkpoint`."""
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            stored = {n: handle.get_tensor(n) for n in handle.keys()} if tensors else {}  # noqa: SIM118
    except (SafetensorError, OSError, RuntimeError, ValueError) as error:
        raise ValueError(f"{path} is not a readable safetensors file: {error}") from error
    if metadata.get("format") != FORMAT_NAME:
        raise ValueError(
            f"{path} is not a {FORMAT_NAME} checkpoint (format={metadata.get('format')!r})"
        )
    return metadata, stored


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[FrameSequenceNetwork, NetworkConfig, dict[str, Any]]:
    """Rebuild the network stored at ``path`` (no unpickling).

    Returns:
        ``(model, config, meta)``: the model on ``device`` in eval mode, its config, and the
        saved meta dict plus ``format_version`` and ``created_utc``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a safetensors file, not a checkpoint of this format, another format
            version, altered content, or tensors that do not match the stored config.
    """
    path = Path(path)
    metadata, tensors = _read(path, tensors=True)
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise ValueError(
            f"{path} has checkpoint format version {metadata.get('format_version')!r}; "
            f"this code reads version {FORMAT_VERSION}"
        )
    if metadata.get("tensors_sha256") != _tensors_digest(tensors):
        raise ValueError(f"{path}: tensors do not match their recorded digest (altered file?)")
    try:
        config = NetworkConfig.from_dict(json.loads(metadata["config"]))
        meta = json.loads(metadata["meta"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: invalid config or meta in the metadata: {error}") from error
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: meta must be a JSON object")

    with torch.random.fork_rng(devices=[]):  # the weights are overwritten: leave the caller's
        model = build_model(config)  # random stream as it was (a run resumes exactly)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong_shape = sorted(
        name for name in set(expected) & set(tensors) if tensors[name].shape != expected[name].shape
    )
    if missing or unexpected or wrong_shape:
        raise ValueError(
            f"{path}: tensors do not fit the stored config {config}: missing {missing}, "
            f"unexpected {unexpected}, wrong shape {wrong_shape}"
        )
    model.load_state_dict(tensors, strict=True)
    model.to(device)
    model.eval()
    meta["format_version"] = FORMAT_VERSION
    meta["created_utc"] = metadata.get("created_utc")
    return model, config, meta


def update_meta(path: str | os.PathLike[str], entries: dict[str, Any]) -> Path:
    """Rewrite the checkpoint at ``path`` with ``entries`` merged into its meta (atomically).

    The weights and config are unchanged (same tensor digest); ``weights_created_utc``
    keeps the time the weights were first written, ``created_utc`` becomes now.
    """
    model, config, meta = load_checkpoint(path)
    created = meta.pop("created_utc", None)
    meta.pop("format_version", None)
    meta.setdefault("weights_created_utc", created)
    meta.update(entries)
    return save_checkpoint(path, model, config, meta)
