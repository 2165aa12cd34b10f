"""Moving digits: the Moving-MNIST set-up of the method, built from digits that ship with
scikit-learn (no download).

Moving-MNIST (Srivastava et al. 2015, used by Shi et al. 2015) moves two 28 x 28 MNIST
digits inside a 64 x 64 frame, each with a constant velocity, bouncing off the edges; the
frame is the pixel-wise maximum of the two. MNIST cannot be downloaded here, so the digits
are scikit-learn's ``load_digits`` (1,797 handwritten digits of 8 x 8 pixels, 16 grey
levels), upscaled bilinearly to 28 x 28. They are blurrier and blockier than MNIST's: the
numbers are not comparable with the paper's, the ordering of the models is what is checked.

All functions are pure given their random generator; intensities are in [0, 1].
"""

from __future__ import annotations

import numpy as np

FRAME_CELLS = 64
DIGIT_CELLS = 28
TRAIN_DIGITS = 1500  # digits 0..1499 for training sequences, the rest (297) for test ones


def digit_images() -> np.ndarray:
    """scikit-learn's digits upscaled to ``(1797, 28, 28)`` float32 in [0, 1]."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    small = load_digits().images.astype(np.float32) / 16.0  # (1797, 8, 8)
    big = zoom(small, (1, DIGIT_CELLS / 8, DIGIT_CELLS / 8), order=1)
    return np.clip(big, 0.0, 1.0).astype(np.float32)


def trajectories(
    rng: np.random.Generator, n: int, frames: int, speed_cells: tuple[float, float] = (2.0, 4.0)
) -> np.ndarray:
    """Top-left corners ``(n, frames, 2)`` (row, col) of digits bouncing in the frame.

    Each digit starts anywhere, moves at a speed drawn in ``speed_cells`` per frame in a
    random direction, and is reflected at the edges (the corner stays in [0, 64 - 28]).
    """
    limit = FRAME_CELLS - DIGIT_CELLS
    position = rng.uniform(0, limit, size=(n, 2))
    angle = rng.uniform(0, 2 * np.pi, size=n)
    speed = rng.uniform(*speed_cells, size=n)
    velocity = np.stack([np.sin(angle), np.cos(angle)], axis=1) * speed[:, None]
    out = np.empty((n, frames, 2))
    for t in range(frames):
        out[:, t] = position
        position = position + velocity
        for axis in (0, 1):
            low, high = position[:, axis] < 0, position[:, axis] > limit
            position[low, axis] = -position[low, axis]
            position[high, axis] = 2 * limit - position[high, axis]
            velocity[low | high, axis] *= -1
    return out


def sequences(
    rng: np.random.Generator,
    images: np.ndarray,
    n: int,
    frames: int = 20,
    digits_per_frame: int = 2,
) -> np.ndarray:
    """``(n, frames, 64, 64)`` float32 sequences of ``digits_per_frame`` moving digits.

    Args:
        images: ``(D, 28, 28)`` digit images to draw from (a train or a test subset).
    """
    out = np.zeros((n, frames, FRAME_CELLS, FRAME_CELLS), dtype=np.float32)
    for _ in range(digits_per_frame):
        chosen = images[rng.integers(len(images), size=n)]
        corners = np.rint(trajectories(rng, n, frames)).astype(int)
        for i in range(n):
            for t in range(frames):
                r, c = corners[i, t]
                patch = out[i, t, r : r + DIGIT_CELLS, c : c + DIGIT_CELLS]
                np.maximum(patch, chosen[i], out=patch)
    return out


def split_images(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train digits, test digits): test sequences never show a training digit."""
    return images[:TRAIN_DIGITS], images[TRAIN_DIGITS:]


def ghost_fraction(
    last_input: np.ndarray, target: np.ndarray, forecast: np.ndarray, on: float = 0.3
) -> float:
    """Share of the forecast's intensity left where the digits were at the last input frame
    and are no longer: the "ghost trail" of a model that keeps old positions.

    Args:
        last_input: ``(..., 64, 64)`` the newest input frame (broadcast against the others).
        target, forecast: ``(..., 64, 64)`` the true and the forecast frame of one lead.
        on: intensity above which a pixel holds a digit.

    Returns:
        sum(forecast where old digit and no digit now) / sum(forecast); 0 for an empty
        forecast. Persistence scores high, a perfect forecast 0.
    """
    stale = (last_input > on) & (target <= on)
    total = float(forecast.sum())
    return float(forecast[np.broadcast_to(stale, forecast.shape)].sum()) / total if total else 0.0
