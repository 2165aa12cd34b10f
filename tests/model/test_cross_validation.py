"""Cross-validation over training-event folds (issue 15): a run that holds out a fold never
trains on its events, and `model.experiments.fold_scores` scores it on exactly those."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from ingest.cf_writer import write_synthetic_feed
from model.data.split import Block, training_event_folds
from tests.model.helpers import SMALL_GRID_ENV


def test_training_events_are_dealt_into_folds_by_name_each_once():
    blocks = [
        Block(name, 0, 30, split)
        for name, split in [
            ("knmi/b", "train"),
            ("bom/a", "train"),
            ("knmi/a", "train"),
            ("knmi/a", "test"),
            ("fmi/a", "validation"),  # no training block: in no fold
            ("dpc/a", "train"),
        ]
    ]
    assert training_event_folds(blocks, 2) == [["bom/a", "knmi/a"], ["dpc/a", "knmi/b"]]
    with pytest.raises(ValueError, match="cannot fill 5 folds"):
        training_event_folds(blocks, 5)
    with pytest.raises(ValueError, match=">= 2"):
        training_event_folds(blocks, 1)


def test_a_held_out_fold_is_never_trained_on_and_is_what_the_fold_scores_read(tmp_path):
    from model.experiments.fold_scores import NETWORK, ZERO_START
    from model.nets.checkpoint import load_checkpoint

    events = tmp_path / "events"
    for seed, name in enumerate(("a", "b", "c", "d")):
        write_synthetic_feed(events / name, 60, site_id="s-1", shape=(96, 96), seed=seed)
    env = {**os.environ, **SMALL_GRID_ENV}
    out = tmp_path / "fold1.safetensors"
    train = [
        sys.executable, "-m", "service.cli", "train", str(events), "--arch", "convlstm",
        "--hidden", "4,4", "--block-frames", "20", "--eval-every-min", "0.05",
        "--max-minutes", "0.1", "--no-extra-crops", "--hold-out-fold", "1/2",
        "--log-dir", str(tmp_path / "logs"), "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(train, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    meta = load_checkpoint(out)[2]
    held_out = meta["held_out"]
    assert (held_out["fold"], held_out["folds"]) == (1, 2) and held_out["events"]
    trained = {b["event"] for b in meta["training_data"]["blocks"] if b["split"] == "train"}
    assert set(held_out["events"]) < trained  # training events, left out of this run's blocks
    bad = subprocess.run(
        [*train[:-4], "--hold-out-fold", "2/2"], env=env, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "0 <= K < N" in bad.stderr
    resumable = tmp_path / "logs" / "convlstm.resume.pt"
    unfolded = [a for a in train if a not in ("--hold-out-fold", "1/2")]
    resumed = subprocess.run(
        [*unfolded, "--resume", str(resumable)], env=env, capture_output=True, text=True
    )  # the held-out events would join the training: refused
    assert resumed.returncode != 0 and "same --hold-out-fold" in resumed.stderr

    scores_json = tmp_path / "cv.json"
    scored = subprocess.run(
        [
            sys.executable, "-m", "model.experiments.fold_scores", str(events),
            "--checkpoint", str(out), "--cache", str(tmp_path / "cache"),
            "--json", str(scores_json),
        ],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-2000:]
    report = json.loads(scores_json.read_text())
    (fold,) = report["folds"]
    assert fold["events"] == sorted(held_out["events"]) and fold["windows"] > 0
    # the held-out events' training-block windows, 20-frame blocks, 20-frame windows: one each
    held_blocks = [
        b
        for b in meta["training_data"]["blocks"]
        if b["event"] in held_out["events"] and b["split"] == "train"
    ]
    assert fold["windows"] == len(held_blocks)
    names = set(report["pooled"])
    assert len(names) == 3 and all(fold["scores"][n] == report["pooled"][n] for n in names)
    assert set(report["network_no_worse_than_zero_start"]) == {
        "csi_0_5",
        "csi_2",
        "csi_5",
        "rain_mse",
    }
    from model.evaluation.card_attribution import cross_validation_section

    section = cross_validation_section(report)
    assert f"| fold 1 of 2: {len(held_out['events'])} events | {fold['windows']} |" in section
    assert "| **pooled** |" in section and "Pooled over the folds" in section

    # round 6: the residual gate selected on the fold, checked on validation, stored
    served = tmp_path / "served.safetensors"
    shutil.copy(out, served)
    gate_json = tmp_path / "gate.json"
    gated = subprocess.run(
        [
            sys.executable, "-m", "model.experiments.residual_gate", str(events),
            "--fold", str(out), "--checkpoint", str(served), "--cache", str(tmp_path / "cache"),
            "--json", str(gate_json), "--write-meta",
        ],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert gated.returncode == 0, gated.stderr[-2000:]
    gate = json.loads(gate_json.read_text())
    assert len(gate["gate_by_lead"]) == 15
    assert set(gate["gate_by_lead"]) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    # gate 0 is the zero start, gate 1 the network: as fold_scores measured them
    assert gate["pooled_folds"]["0.0"] == report["pooled"][ZERO_START]
    assert gate["pooled_folds"]["1.0"] == report["pooled"][NETWORK]
    stored = load_checkpoint(served)[2]["residual_gate"]
    assert stored["by_lead"] == gate["gate_by_lead"]
    assert stored["use"] == gate["passes_validation_guards"]
    assert set(gate["validation"]) == {"zero start", "network", "gated"}
    assert "pooled_folds_gated_nested" not in gate  # one fold: nothing to nest


def test_the_card_says_where_the_fold_networks_fall_short_of_their_zero_start():
    from model.evaluation.card_attribution import cross_validation_section
    from model.experiments.fold_scores import EXTRAPOLATION, NETWORK, ZERO_START, verdict

    def scores(csi_0_5: float, csi_2: float, csi_5: float, mse: float) -> dict:
        return {"csi_0_5": csi_0_5, "csi_2": csi_2, "csi_5": csi_5, "rain_mse": mse}

    pooled = {
        NETWORK: scores(0.52, 0.30, 0.10, 1.5),
        ZERO_START: scores(0.50, 0.31, 0.10, 1.6),
        EXTRAPOLATION: scores(0.45, 0.28, 0.10, 1.7),
    }
    fold = {"fold": 0, "folds": 2, "events": ["a", "b"], "windows": 12, "scores": pooled}
    fold.update(step=0, run={"minutes": 17.0, "samples_seen": 20000})
    result = {"folds": [fold], "pooled": pooled, "network_no_worse_than_zero_start": {}}
    result["network_no_worse_than_zero_start"] = verdict(pooled)
    assert result["network_no_worse_than_zero_start"] == {
        "csi_0_5": True,
        "csi_2": False,
        "csi_5": True,  # a tie is no worse
        "rain_mse": True,
    }
    section = cross_validation_section(result)
    assert "worse than their zero start at: CSI(2)." in section
    assert "| fold 0 of 2: 2 events | 12 | 0.520 / 0.300 / 0.100 / 1.500 |" in section
    assert "fold 0: 17.0 min, 20000 samples, selected at step 0 (the zero start)" in section
    assert "Not measured" in cross_validation_section(None)
