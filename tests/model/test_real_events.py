"""Every method on every real event folder, with the shipped checkpoint (needs the data)."""

from __future__ import annotations

import pytest

from ingest.normalize import NormParams
from model.data.events import event_folders, load_event
from model.data.split import WindowRef, split_windows
from model.evaluation.evaluate import evaluate_method, report
from model.methods import get_method, learned_names, method_names
from model.nets.architectures import default_config
from model.paths import DEFAULT_CHECKPOINT
from service.settings import Settings


@pytest.fixture(scope="module")
def real_events(shared_radar):
    """Every event folder, named as `nowcast train` names them (parent/folder)."""
    return [
        load_event(folder, Settings(), name=f"{folder.parent.name}/{folder.name}")
        for folder in event_folders([shared_radar])
    ]


def test_the_shipped_checkpoint_loads_on_cpu():
    method = get_method("convlstm", checkpoint=DEFAULT_CHECKPOINT, device="cpu")
    assert method.config == default_config("convlstm")  # the Lagrangian ConvLSTM as sized
    assert method.meta["training_data"]["events"]  # it says what it was trained on


@pytest.mark.parametrize("name", learned_names())
def test_every_shipped_network_loads_on_cpu_and_says_what_it_was_trained_on(name):
    method = get_method(name, device="cpu")
    assert method.config.architecture == name and method.config.frame_cells == 100
    events = method.meta["training_data"]["events"]
    assert len(events) >= 24 and all(e["frames"] >= 20 for e in events)
    assert method.meta["training_data"]["blocks"]  # and on which blocks


@pytest.mark.real_data
def test_the_served_convlstm_was_trained_on_every_event_and_todays_split(real_events):
    data = get_method("convlstm").meta["training_data"]
    assert [e["name"] for e in data["events"]] == [e.name for e in real_events]
    _, blocks = split_windows(real_events, 5, 15, data["block_frames"])
    assert data["blocks"] == [b.__dict__ for b in blocks]  # calibrate and evaluate agree


@pytest.mark.real_data
@pytest.mark.parametrize("name", method_names())
def test_every_method_forecasts_every_real_event(shared_radar, real_events, name):
    folders = {path.parent for path in shared_radar.rglob("*.nc")}
    assert len(real_events) == len(folders) >= 24  # one event per folder of frames
    method = get_method(name)
    first_windows = [WindowRef(i, e.window_starts(5, 15)[0]) for i, e in enumerate(real_events)]
    scores, count = evaluate_method(method, real_events, NormParams(), windows=first_windows)
    assert count == len(real_events)
    result = report(name, scores, count, real_events)
    assert len(result["csi"]["0.5"]) == 15
    assert any(v is not None for v in result["csi"]["0.5"])
