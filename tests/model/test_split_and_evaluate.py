"""Time-block split, event windows, and the evaluation report on synthetic events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ingest.cf_writer import write_synthetic_feed
from ingest.normalize import NormParams
from model.data.events import Event, event_folders, load_event
from model.data.split import split_windows
from model.evaluation.evaluate import evaluate_method, report
from model.methods import get_method
from tests.ingest.helpers import small_settings

START = datetime(2026, 1, 1, tzinfo=UTC)
REQUIRED_KEYS = {
    "method",
    "forecasts",
    "lead_minutes",
    "thresholds",
    "csi",
    "far",
    "pod",
    "rain_mse",
    "correlation",
}


def make_event(name: str, n: int, cadence_min: float = 6.0, drop: tuple[int, ...] = ()) -> Event:
    times = tuple(START + timedelta(minutes=cadence_min * i) for i in range(n) if i not in drop)
    grey = np.random.default_rng(0).random((len(times), 8, 8), dtype=np.float32)
    return Event(name, "s-1", times, grey, cadence_min, "n1-test")


def test_windows_never_cross_a_gap():
    event = make_event("e", 30, drop=(12,))
    starts = event.window_starts(5, 5)
    assert starts == [0, 1, 2, *range(12, 20)]  # index 12 is the frame after the gap
    for s in starts:
        steps = {event.times[s + k + 1] - event.times[s + k] for k in range(9)}
        assert steps == {timedelta(minutes=6)}


def test_split_never_shares_frames_between_sets():
    events = [make_event(f"e{i}", 95) for i in range(4)]
    windows, blocks = split_windows(events, 5, 15, block_frames=30)
    assert {b.split for b in blocks} == {"train", "validation", "test"}
    frames: dict[str, set[tuple[int, int]]] = {}
    for split, refs in windows.items():
        frames[split] = {(r.event_index, r.start + k) for r in refs for k in range(20)}
    assert not frames["train"] & frames["validation"]
    assert not frames["train"] & frames["test"]
    assert not frames["validation"] & frames["test"]
    counts = {s: sum(b.split == s for b in blocks) for s in ("train", "validation", "test")}
    assert counts == {"train": 8, "validation": 2, "test": 2}  # 12 blocks at 4 : 1 : 1


def test_blocks_are_dealt_by_rain_so_validation_and_test_get_the_wettest():
    rng = np.random.default_rng(3)
    wet = [0.9, 0.6, 0.55, 0.5, 0.45, 0.4, 0.2, 0.1, 0.05, 0.03, 0.01, 0.0]
    events = []
    for i, level in enumerate(wet):  # one 20-frame block per event, rain share ``level``
        grey = (rng.random((20, 8, 8)) < level).astype(np.float32) * 0.6
        events.append(Event(f"e{i:02d}", "s-1", make_event("x", 20).times, grey, 6.0, "n"))
    _, blocks = split_windows(events, 5, 15, block_frames=20)
    split = {b.event: b.split for b in blocks}
    # wettest first: validation, test, then training; the next run mirrored (dry end)
    assert (split["e00"], split["e01"], split["e02"]) == ("validation", "test", "train")
    assert (split["e10"], split["e11"]) == ("test", "validation")
    # a pure function of the data: listing the events in another order changes nothing
    assert {b.event: b.split for b in split_windows(events[::-1], 5, 15, 20)[1]} == split


# The fixed test split of ../shared/data/radar (blocks of 30 frames), stated in the model card.
TEST_BLOCKS = [
    ("radar/bom-melbourne-6min", 30),
    ("radar/fmi-finland-5min-20170509", 0),
    ("knmi-netherlands-5min-dbz/2021-01-10-2005", 0),
    ("knmi-netherlands-5min-dbz/2021-02-06-2005", 0),
    ("knmi-netherlands-5min-dbz/2021-02-07-2005", 0),
]


@pytest.mark.real_data
def test_the_real_split_is_fixed_and_validation_and_test_hold_rain_at_every_lead(shared_radar):
    from model.verification.scores import grey_to_mmh
    from service.settings import Settings

    events = [
        load_event(folder, Settings(), name=f"{folder.parent.name}/{folder.name}")
        for folder in event_folders([shared_radar])
    ]
    windows, blocks = split_windows(events, 5, 15, block_frames=30)
    assert [(b.event, b.first) for b in blocks if b.split == "test"] == TEST_BLOCKS
    for split in ("validation", "test"):
        truth = np.stack([events[r.event_index].grey[r.start + 5 : r.start + 20]
                          for r in windows[split]])  # fmt: skip
        rain_mmh = grey_to_mmh(truth, NormParams())
        for threshold in (0.5, 2.0, 5.0):
            per_lead = (rain_mmh >= threshold).sum(axis=(0, 2, 3))
            assert (per_lead > 0).all(), (split, threshold, per_lead)


def test_block_too_small_is_refused():
    with pytest.raises(ValueError, match="cannot hold"):
        split_windows([make_event("e", 40)], 5, 15, block_frames=19)


def test_report_has_the_required_keys_and_nulls_for_undefined():
    dry = Event("dry", "s-1", make_event("x", 25).times, np.zeros((25, 8, 8), np.float32), 6.0, "n")
    scores, count = evaluate_method(get_method("persistence"), [dry], NormParams())
    result = report("persistence", scores, count, [dry])
    assert set(result) >= REQUIRED_KEYS
    assert result["forecasts"] == 6 and len(result["lead_minutes"]) == 15
    assert result["lead_minutes"][0] == 6.0 and result["lead_minutes"][-1] == 90.0
    assert result["csi"]["0.5"] == [None] * 15  # no event observed or forecast: undefined
    json.dumps(result)  # JSON-safe


def test_events_load_from_folders_through_the_ingest_normaliser(tmp_path):
    root = tmp_path / "events"
    write_synthetic_feed(root / "a", 22, site_id="s-1", shape=(96, 96))
    write_synthetic_feed(root / "b", 21, site_id="s-2", shape=(96, 96), cadence_min=5)
    folders = list(event_folders([root]))
    assert [f.name for f in folders] == ["a", "b"]
    settings = small_settings(tmp_path / "d")
    event = load_event(folders[1], settings)
    assert event.grey.shape == (21, 32, 32) and event.cadence_min == 5
    assert event.window_starts(5, 15) == [0, 1]


def test_evaluate_cli_writes_json_plot_and_strip(tmp_path):
    feed = tmp_path / "event"
    write_synthetic_feed(feed, 22, site_id="s-1", shape=(128, 128))
    env = {**os.environ, "NOWCAST_CROP_CELLS": "120"}
    out_json, out_png, strip = tmp_path / "p.json", tmp_path / "p.png", tmp_path / "s.png"
    cmd = [
        sys.executable,
        "-m",
        "service.cli",
        "evaluate",
        str(feed),
        "--method",
        "persistence",
        "--json",
        str(out_json),
        "--plot",
        str(out_png),
        "--strip",
        str(strip),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out_json.read_text())
    assert set(data) >= REQUIRED_KEYS and data["forecasts"] == 3
    # the per-event counts (one event here) add up to the pooled ones
    assert list(data["counts_by_event"]) == [data["events"][0]["name"]]
    hits = np.asarray(data["counts_by_event"][data["events"][0]["name"]]["hits"])  # (lead, t)
    for j, key in enumerate(data["counts"]["hits"]):
        assert hits[:, j].tolist() == data["counts"]["hits"][key]
    assert out_png.stat().st_size > 10_000 and strip.stat().st_size > 10_000
    compare = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "evaluate",
            "--compare",
            str(out_json),
            str(out_json),
            "--plot",
            str(tmp_path / "c.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compare.returncode == 0, compare.stderr[-2000:]
    # the second report minus the first, on the same windows: nothing, and one event gives
    # no interval
    assert (
        "persistence minus persistence, mean CSI(0.5): +0.0000, no interval (fewer than 3 "
        "events, or undefined without one) over 1 events" in compare.stdout
    )
    wrong = subprocess.run(
        [sys.executable, "-m", "service.cli", "evaluate", str(feed), "--method", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode != 0 and "persistence" in wrong.stderr


def test_observed_event_cells_count_the_windows_truth_per_event():
    from model.data.split import WindowRef
    from model.evaluation.evaluate import observed_event_cells

    dry, wet = make_event("dry", 25), make_event("wet", 25)
    wet.grey[:] = 0.0
    wet.grey[6, :2, :] = 0.5  # 16 cells >= 0.5 mm/h in frame 6
    dry.grey[:] = 0.0
    events = [dry, wet]
    counts = observed_event_cells(events, NormParams())
    assert counts["0.5"] == {"dry": 0, "wet": 16 * 2}  # frame 6 is a lead of windows 0 and 1
    only = observed_event_cells(events, NormParams(), windows=[WindowRef(1, 1)])
    assert only["0.5"] == {"wet": 16} and only["30.0"] == {"wet": 0}
