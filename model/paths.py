"""Where the model stage's shipped files live: paths only (no file is read, torch not imported)."""

from __future__ import annotations

from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent
CHECKPOINTS = MODEL_DIR / "checkpoints"
MODEL_CARD = MODEL_DIR / "MODEL_CARD.md"
TRAINING_LOGS = MODEL_DIR / "training_logs"


def default_checkpoint(name: str) -> Path:
    """The shipped checkpoint of the learned method ``name``."""
    return CHECKPOINTS / f"{name}.safetensors"


DEFAULT_CHECKPOINT = default_checkpoint("convlstm")
