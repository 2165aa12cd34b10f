"""Every method on every real event folder, with the shipped checkpoint (needs the data)."""

from __future__ import annotations

import pytest

from ingest.normalize import NormParams
from ingest.settings import Settings
from model.evaluate import evaluate_method, report
from model.events import event_folders, load_event
from model.methods import LEARNED, get_method, method_names
from model.paths import DEFAULT_CHECKPOINT
from model.split import WindowRef


@pytest.fixture(scope="module")
def real_events(shared_radar):
    return [load_event(folder, Settings()) for folder in event_folders([shared_radar])]


def test_the_shipped_checkpoint_loads_on_cpu():
    method = get_method("convlstm", checkpoint=DEFAULT_CHECKPOINT, device="cpu")
    assert method.config.frame_cells == 100 and method.config.hidden_channels == (64, 64)
    assert method.meta["training_data"]["events"]  # it says what it was trained on


@pytest.mark.parametrize("name", LEARNED)
def test_every_shipped_network_loads_on_cpu_and_says_what_it_was_trained_on(name):
    method = get_method(name, device="cpu")
    assert method.config.architecture == name and method.config.frame_cells == 100
    assert len(method.meta["training_data"]["events"]) == 24
    assert (
        method.meta["training_data"]["blocks"]
        == get_method("convlstm").meta["training_data"]["blocks"]
    )  # the same split for all: a fair comparison


@pytest.mark.real_data
@pytest.mark.parametrize("name", method_names())
def test_every_method_forecasts_every_real_event(real_events, name):
    assert len(real_events) == 24  # BOM x2, FMI x2, KNMI x20
    method = get_method(name)
    first_windows = [WindowRef(i, e.window_starts(5, 15)[0]) for i, e in enumerate(real_events)]
    scores, count = evaluate_method(method, real_events, NormParams(), windows=first_windows)
    assert count == 24
    result = report(name, scores, count, real_events)
    assert len(result["csi"]["0.5"]) == 15
    assert any(v is not None for v in result["csi"]["0.5"])
