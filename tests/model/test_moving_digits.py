"""Moving digits: the sequence generator, the ghost-trail score and the experiment command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.experiments import digits_data
from model.experiments.digits_data import DIGIT_CELLS, FRAME_CELLS


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return digits_data.digit_images()


def test_the_digits_ship_with_scikit_learn_upscaled(images: np.ndarray) -> None:
    assert images.shape == (1797, DIGIT_CELLS, DIGIT_CELLS) and images.dtype == np.float32
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    train, test = digits_data.split_images(images)
    assert len(train) + len(test) == len(images) and len(test) > 200


def test_digits_move_in_straight_lines_and_bounce_off_the_edges() -> None:
    corners = digits_data.trajectories(np.random.default_rng(0), 200, 30)
    limit = FRAME_CELLS - DIGIT_CELLS
    assert corners.min() >= 0 and corners.max() <= limit
    steps = np.diff(corners, axis=1)
    speeds = np.linalg.norm(steps, axis=2)
    reflected = (corners[:, 1:-1] <= 4) | (corners[:, 1:-1] >= limit - 4)  # near a wall
    free = ~reflected.any(axis=2)
    # away from the walls every step has the digit's own constant speed, in [2, 4] cells
    assert np.all((speeds[:, 1:][free] >= 2 - 1e-9) & (speeds[:, 1:][free] <= 4 + 1e-9))
    bounced = (np.sign(steps[:, 1:]) != np.sign(steps[:, :-1])) & (steps[:, :-1] != 0)
    assert bounced.any()  # over 30 frames some digits reach a wall and turn back


def test_sequences_hold_two_moving_digits(images: np.ndarray) -> None:
    seq = digits_data.sequences(np.random.default_rng(1), images, 8, frames=20)
    assert seq.shape == (8, 20, FRAME_CELLS, FRAME_CELLS) and seq.dtype == np.float32
    assert float(seq.min()) >= 0 and float(seq.max()) <= 1
    assert np.all(seq.sum(axis=(2, 3)) > 0)
    assert not np.allclose(seq[:, 0], seq[:, 10])  # they move
    again = digits_data.sequences(np.random.default_rng(1), images, 8, frames=20)
    np.testing.assert_array_equal(seq, again)


def test_the_ghost_fraction_separates_persistence_from_a_moving_forecast(
    images: np.ndarray,
) -> None:
    seq = digits_data.sequences(np.random.default_rng(2), images, 32, frames=20)
    last, target = seq[:, 9], seq[:, 19]
    persistence = digits_data.ghost_fraction(last, target, last.copy())
    perfect = digits_data.ghost_fraction(last, target, target.copy())
    assert persistence > 0.4 and perfect < 0.1
    assert digits_data.ghost_fraction(last, target, np.zeros_like(target)) == 0.0


def test_the_experiment_command_writes_its_table_json_and_picture(tmp_path: Path) -> None:
    out = tmp_path / "md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "experiment",
            "moving-digits",
            "--out",
            str(out),
            "--samples",
            "32",
            "--test-sequences",
            "8",
            "--variant",
            "convlstm-1x32-k3",
            "--variant",
            "fclstm-2x512",
            "--weights-dir",
            str(tmp_path / "weights"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in result["results"]] == ["convlstm-1x32-k3", "fclstm-2x512"]
    assert all(r["train_samples"] == 32 and r["test_cross_entropy"] > 0 for r in result["results"])
    assert result["persistence"]["ghost"] > 0.4
    table = (out / "table.md").read_text()
    assert "experiment moving-digits" in table and "| persistence (reference)" in table
    assert (out / "predictions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(set(result["pictured_sequences"])) == 3
    # the trained networks are kept as checkpoints that rebuild themselves
    from model.nets.checkpoint import load_checkpoint
    from model.nets.network import count_parameters

    model, config, meta = load_checkpoint(tmp_path / "weights" / "convlstm-1x32-k3.safetensors")
    assert config.to_dict() == result["variants"]["convlstm-1x32-k3"]
    assert meta["test_cross_entropy"] == result["results"][0]["test_cross_entropy"]
    assert count_parameters(model) == result["results"][0]["parameters"]

    # variants trained in separate runs are scored together again from their checkpoints
    again = subprocess.run(
        [
            sys.executable, "-m", "service.cli", "experiment", "moving-digits",
            "--out", str(tmp_path / "again"), "--test-sequences", "8",
            "--variant", "convlstm-1x32-k3", "--variant", "fclstm-2x512",
            "--weights-dir", str(tmp_path / "weights"), "--from-weights",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    rescored = json.loads((tmp_path / "again" / "results.json").read_text())
    assert rescored["results"] == result["results"]  # same test sequences, same weights
    missing = subprocess.run(
        [
            sys.executable, "-m", "service.cli", "experiment", "moving-digits",
            "--out", str(tmp_path / "none"), "--variant", "convlstm-2x32-k3",
            "--weights-dir", str(tmp_path / "weights"), "--from-weights",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert missing.returncode != 0 and "no saved variant convlstm-2x32-k3" in missing.stderr


def test_the_picture_shows_the_fullest_and_the_most_travelled_sequences(
    images: np.ndarray,
) -> None:
    from model.experiments.moving_digits import IN_FRAMES, showcase_indices

    test = digits_data.sequences(np.random.default_rng(3), images, 40)
    test[7] = 0.0
    test[7, :, 10:30, 10:30] = 1.0  # a square that never moves: never a travelling example
    test[5, IN_FRAMES - 1] = 1.0  # the whole frame lit at the last input: the fullest
    chosen = showcase_indices(test)
    assert chosen[0] == 5 and len(set(chosen)) == 3 and 7 not in chosen
    last, end = test[:, IN_FRAMES - 1] > 0.3, test[:, -1] > 0.3
    covered = last.sum(axis=(1, 2))
    left = (last & ~end).sum(axis=(1, 2)) / covered
    candidates = [i for i in range(40) if i != 5 and covered[i] >= np.median(covered)]
    assert left[chosen[1]] == max(left[i] for i in candidates) >= left[chosen[2]]


def test_an_unknown_variant_is_refused_with_the_valid_names(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "experiment", "moving-digits", "--variant", "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "convlstm-2x32-k3" in done.stderr


def test_a_bf16_variant_trains_scores_and_says_so(images: np.ndarray) -> None:
    from model.experiments.moving_digits import VARIANTS, train_variant

    train, test_images = digits_data.split_images(images)
    test = digits_data.sequences(np.random.default_rng(1), test_images, 4)
    config = VARIANTS["convlstm-1x32-k3"]
    fp32, _ = train_variant("v", config, train, test, samples=16, batch_size=8, seed=0)
    bf16, forecast = train_variant(
        "v", config, train, test, samples=16, batch_size=8, seed=0, bf16=True
    )
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16 autocast")
    assert forecast.shape == (4, 10, FRAME_CELLS, FRAME_CELLS) and np.isfinite(forecast).all()
    # the same seed, data and two steps: bf16 rounding moves the score, not its scale
    assert bf16.test_cross_entropy == pytest.approx(fp32.test_cross_entropy, rel=0.05)
