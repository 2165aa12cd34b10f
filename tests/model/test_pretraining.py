"""The synthetic pre-training corpus: drawn parameters, frames on disk, and the card's account."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from model.data.events import load_event
from model.evaluation.card import describe_initialisation
from model.nets.checkpoint import load_checkpoint
from model.training import pretraining
from service.settings import Settings
from tests.model.helpers import SMALL_GRID_ENV, run_cli


def _speed_kmh(params: object) -> float:
    u, v = params.velocity_kmh  # type: ignore[attr-defined]
    return math.hypot(u, v)


def test_draw_corpus_is_reproducible_varied_and_inside_the_documented_ranges():
    events = pretraining.draw_corpus(200, seed=3)
    assert events == pretraining.draw_corpus(200, seed=3)
    assert events != pretraining.draw_corpus(200, seed=4)
    assert len({e.site_id for e in events}) == 200 and len({e.seed for e in events}) == 200
    assert all(e.site_id.startswith(pretraining.SITE_PREFIX) for e in events)
    params = [e.params for e in events]
    assert {p.cadence_min for p in params} == set(pretraining.CADENCES_MIN)
    speeds = [_speed_kmh(p) for p in params]
    assert pretraining.SPEED_KMH[0] <= min(speeds) and max(speeds) <= pretraining.SPEED_KMH[1]
    directions = [math.atan2(p.velocity_kmh[1], p.velocity_kmh[0]) for p in params]
    assert np.histogram(directions, bins=4, range=(-math.pi, math.pi))[0].min() > 20  # any way
    for name, attribute in [
        ("WET_FRACTION", "wet_fraction"),
        ("BETA", "beta"),
        ("LOG_RAIN_MEAN_DBR", "log_rain_mean_dbr"),
        ("LIFETIME_REF_MIN", "lifetime_ref_min"),
    ]:
        low, high = getattr(pretraining, name)
        values = [getattr(p, attribute) for p in params]
        assert low <= min(values) and max(values) <= high
        assert max(values) - min(values) > 0.8 * (high - low)  # the range is used, not a point
    with pytest.raises(ValueError, match="n_events"):
        pretraining.draw_corpus(0, seed=0)


def test_the_corpus_reads_back_through_the_ingest_normaliser_as_separate_moving_events(
    tmp_path, monkeypatch
):
    for key, value in SMALL_GRID_ENV.items():
        monkeypatch.setenv(key, value)
    folders = pretraining.write_corpus(tmp_path, 3, frames=20, seed=1, shape=(96, 96))
    drawn = pretraining.draw_corpus(3, seed=1, shape=(96, 96))
    settings = Settings()
    events = [load_event(folder, settings) for folder in folders]
    times = [t for event in events for t in event.times]
    assert len(times) == len(set(times)) == 60  # no two events share a valid time
    for event, draw in zip(events, drawn, strict=True):
        assert event.site_id == draw.site_id and event.grey.shape == (20, 32, 32)
        assert event.cadence_min == draw.params.cadence_min
        assert 0.0 < float(event.grey.max()) <= 1.0
        assert float(np.abs(np.diff(event.grey, axis=0)).mean()) > 1e-3  # the rain changes


def test_pretrain_on_the_corpus_then_train_on_it_and_the_card_says_so(tmp_path: Path):
    corpus = tmp_path / "corpus"
    result = run_cli("synth-corpus", str(corpus), "--events", "3", "--frames", "40", "--seed", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in corpus.iterdir()) == [f"synth-pre-00{i}" for i in range(3)]

    tiny = [
        "--arch",
        "eulerian-convlstm",
        "--hidden",
        "4,4",
        "--max-epochs",
        "1",
        "--block-frames",
        "20",
        "--crop-cells",
        "16",
    ]
    pretrained = tmp_path / "pre.safetensors"
    logs = ["--log-dir", str(tmp_path / "logs")]
    result = run_cli("train", str(corpus), *tiny, *logs, "--out", str(pretrained))
    assert result.returncode == 0, result.stderr[-2000:]
    tuned = tmp_path / "tuned.safetensors"
    real_like = tmp_path / "real" / "ev"
    result = run_cli("synth", str(real_like), "--frames", "120", "--site", "s-1", "--seed", "5")
    assert result.returncode == 0, result.stderr[-2000:]
    result = run_cli(
        "train", str(real_like), *tiny, *logs, "--init-from", str(pretrained), "--out", str(tuned),
        "--learning-rate", "5e-4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]

    _, _, meta = load_checkpoint(tuned)
    assert meta["train_config"]["learning_rate"] == 5e-4  # a fine-tuning step size
    started = meta["initialised_from"]
    assert started["training_data"]["events"] == [f"corpus/synth-pre-00{i}" for i in range(3)]
    assert started["train_config"]["crop_cells"] == 16
    text = describe_initialisation(json.loads(json.dumps(started)))
    assert "pre-trained on 3 synthetic events of `nowcast synth-corpus`" in text
    assert "real ones" not in text
    assert describe_initialisation(
        {"epoch": 1, "training_data": {"events": ["radar/bom"]}}
    ).endswith("budget)")
