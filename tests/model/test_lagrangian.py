"""The Lagrangian ConvLSTM: coordinates, network, served method, cached windows, resumable runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ingest.cf_writer import write_synthetic_feed
from model.advection.lagrangian import lagrangian_inputs, lagrangian_targets, to_eulerian
from model.advection.motion import motion_field
from model.data.split import WindowRef
from model.data.views import crop_origins
from model.methods import get_method
from model.nets.architectures import build_model, default_config
from model.nets.checkpoint import load_checkpoint, save_checkpoint
from model.nets.config import NetworkConfig
from model.nets.lagrangian_net import LagrangianForecaster
from model.training.lagrangian_data import LagrangianWindows, lagrangian_windows
from model.training.lagrangian_losses import soft_csi_loss
from model.training.lagrangian_train import (
    LagrangianTrainConfig,
    load_resumable,
    train_lagrangian,
)
from model.training.lagrangian_validation import ValidationSet
from tests.model.helpers import SMALL_GRID_ENV

SMALL = NetworkConfig(
    in_frames=5, out_frames=6, frame_cells=32, hidden_channels=(8, 8), patch_size=4,
    architecture="convlstm",
)  # fmt: skip


def moving_blob(frames: int, cells: int = 32, speed: float = 1.5) -> np.ndarray:
    """(frames, cells, cells) grey: a Gaussian rain cell moving right by ``speed`` per step."""
    rows, cols = np.mgrid[0:cells, 0:cells]
    out = []
    for t in range(frames):
        centre = (cells / 2, 6 + speed * t)
        out.append(0.7 * np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / 18.0))
    return np.asarray(out, dtype=np.float32)


def test_inputs_and_targets_in_lagrangian_coordinates_hold_the_rain_still():
    frames = moving_blob(11)
    inputs, targets = frames[:5], frames[5:]
    velocity = motion_field(inputs)
    assert velocity[0].max() > 1.0  # the field moves rain to the right
    moved_in = lagrangian_inputs(inputs, velocity)
    moved_out, inside = lagrangian_targets(targets, velocity)
    last = inputs[-1]
    eulerian_gap = np.abs(inputs[0] - last).mean()
    assert np.abs(moved_in[0] - last).mean() < 0.35 * eulerian_gap
    assert np.array_equal(moved_in[-1], last)
    assert np.abs(moved_out[2] - last).mean() < 0.35 * np.abs(targets[2] - last).mean()
    # at the downwind edge the rain of the issue time has left the grid by the last lead:
    # nothing observed to learn from there
    assert not inside[-1][:, -1].any() and inside[-1][:, 0].mean() > 0.9
    assert inside[0][:, 16].mean() > 0.9


def test_a_network_that_changes_nothing_is_exactly_the_extrapolation_nowcast(tmp_path):
    model = build_model(SMALL)  # the head starts at zero
    path = save_checkpoint(tmp_path / "l.safetensors", model, SMALL, {})
    method = get_method("convlstm", checkpoint=path, device="cpu")
    frames = moving_blob(5)[None]
    out = method(frames, 6)
    expected = get_method("extrapolation")(frames, 6)
    assert out.shape == (1, 6, 32, 32)
    np.testing.assert_array_equal(out, expected)
    # and the Lagrangian field -> Eulerian step alone: the last frame at every lead
    velocity = motion_field(frames[0])
    np.testing.assert_array_equal(
        to_eulerian(np.repeat(frames[0, -1:], 6, 0), velocity), expected[0]
    )


def test_the_network_learns_growth_and_its_output_has_no_checkerboard():
    torch.manual_seed(0)
    model = build_model(SMALL)
    assert isinstance(model, LagrangianForecaster)
    torch.nn.init.normal_(model.head.weight, std=0.5)  # a trained-like, non-zero head
    x = torch.from_numpy(np.repeat(moving_blob(1), 5, 0)[None].copy())
    out = model(x).detach()
    assert out.shape == (1, 6, 32, 32) and float(out.min()) >= 0 and float(out.max()) <= 1
    change = (out - x[:, -1:]).numpy()[0]
    # period-2 pattern of depth-to-space outputs: +- alternation within 2 x 2 blocks
    checker = (
        np.abs(
            change[:, 0::2, 0::2]
            + change[:, 1::2, 1::2]
            - change[:, 0::2, 1::2]
            - change[:, 1::2, 0::2]
        ).mean()
        / 4
    )
    assert checker < 0.05 * np.abs(change).mean()
    eulerian = build_model(replace(SMALL, architecture="eulerian-convlstm", patch_size=2))
    torch.nn.init.normal_(eulerian.head.weight, std=0.5)
    e = eulerian.predict(x).numpy()[0]
    e_checker = np.abs(e[:, 0::2, 0::2] + e[:, 1::2, 1::2] - e[:, 0::2, 1::2] - e[:, 1::2, 0::2])
    assert e_checker.mean() / 4 > 10 * checker  # the test would see the old output path's

    target = torch.clamp(x[:, -1:].repeat(1, 6, 1, 1) * 1.3, 0, 1)  # everything grows
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        optimiser.zero_grad()
        loss = ((model(x) - target) ** 2).mean()
        loss.backward()
        optimiser.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_soft_csi_is_one_minus_csi_on_sharp_fields():
    observed = torch.zeros(1, 1, 4, 4)
    observed[..., :2] = 0.9  # 8 wet cells
    forecast = torch.zeros(1, 1, 4, 4)
    forecast[..., 1:3] = 0.9  # 4 hits, 4 false alarms, 4 misses
    inside = torch.ones_like(observed, dtype=torch.bool)
    assert float(soft_csi_loss(forecast, observed, inside)) == pytest.approx(1 - 4 / 12, abs=1e-3)
    assert float(soft_csi_loss(observed, observed, inside)) == pytest.approx(0.0, abs=1e-3)


def windows_of(seed: int, n: int = 6) -> LagrangianWindows:
    rng = np.random.default_rng(seed)
    frames = rng.random((n, 11, 32, 32), dtype=np.float32)
    return LagrangianWindows(
        f"v{seed}", np.arange(n), frames[:, :5].astype(np.float16),
        frames[:, 5:].astype(np.float16), np.ones((n, 6, 32, 32), bool),
        np.zeros((n, 2, 32, 32), np.float32), frames[:, 5:].astype(np.float16),
    )  # fmt: skip


def test_a_resumed_run_continues_exactly_where_it_stopped(tmp_path):
    train = [windows_of(1), windows_of(2)]
    val = windows_of(3, 2)
    validation = ValidationSet(val.inputs.astype(np.float32), val.velocity, val.targets)
    from ingest.normalize import NormParams

    def sitting(folder: Path, max_steps: int) -> None:
        train_lagrangian(
            build_model(SMALL), SMALL,
            LagrangianTrainConfig(max_steps=max_steps, batch_size=2, device="cpu"),
            train, validation, NormParams(), folder / "c.safetensors", folder / "c.resume.pt",
            {}, resume=(folder / "c.resume.pt").exists(),
        )  # fmt: skip

    sitting(tmp_path / "a", 4)  # one sitting of 4 steps
    sitting(tmp_path / "b", 1)  # 1 step, stopped, then resumed up to 4
    sitting(tmp_path / "b", 4)
    straight = torch.load(tmp_path / "a" / "c.resume.pt", weights_only=True)
    resumed = torch.load(tmp_path / "b" / "c.resume.pt", weights_only=True)
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert straight["numpy_rng"] == resumed["numpy_rng"]
    state, _ = load_resumable(
        tmp_path / "a" / "c.resume.pt", build_model(SMALL),
        torch.optim.Adam(build_model(SMALL).parameters()), np.random.default_rng(),
    )  # fmt: skip
    assert state.step == 4 and state.samples_seen == 8 and len(state.sittings) == 1
    _, config, meta = load_checkpoint(tmp_path / "a" / "c.safetensors")
    assert config == SMALL and meta["samples_seen"] >= 0 and meta["sittings"]


def test_windows_are_moved_once_and_read_back_from_the_cache(tmp_path, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from model.data.events import Event
    from model.training import lagrangian_data

    frames = moving_blob(24)
    times = tuple(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=6 * i) for i in range(24))
    event = Event("e", "s-1", times, frames, 6.0, "n1-test")
    refs = [WindowRef(0, s) for s in range(0, 5)]
    first = lagrangian_windows([event], refs, 5, 6, tmp_path, wet_only=False, workers=1)
    assert first[0].inputs.shape == (5, 5, 32, 32) and first[0].velocity.shape == (5, 2, 32, 32)

    def fail(*_args: object) -> None:
        raise AssertionError("computed again")

    monkeypatch.setattr(lagrangian_data, "transform_window", fail)
    again = lagrangian_windows([event], refs, 5, 6, tmp_path, wet_only=False, workers=1)
    np.testing.assert_array_equal(again[0].targets, first[0].targets)
    # read back memory-mapped: the windows of every archive need not fit in memory at once
    assert isinstance(again[0].inputs, np.memmap) and isinstance(again[0].targets, np.memmap)
    other = replace(event, times=tuple(t + timedelta(days=1) for t in times))
    with pytest.raises(AssertionError, match="computed again"):  # other frames: a new entry
        lagrangian_windows([other], refs, 5, 6, tmp_path, wet_only=False, workers=1)


def test_crops_spread_over_large_grids():
    assert crop_origins((350, 350), 350) == [(0, 0)]
    origins = crop_origins((785, 720), 350)  # KNMI 765 x 700 with the disk margin
    assert len(origins) == 9 and (0, 0) in origins and (435, 370) in origins


def test_training_sittings_stop_on_sigterm_and_resume_from_their_state(tmp_path):
    feed = tmp_path / "events" / "ev"
    write_synthetic_feed(feed, 120, site_id="s-1", shape=(96, 96))
    logs, out = tmp_path / "logs", tmp_path / "c.safetensors"
    argv = [
        sys.executable, "-m", "service.cli", "train", str(feed.parent), "--arch", "convlstm",
        "--hidden", "4,4", "--block-frames", "20", "--eval-every-min", "0.05",
        "--log-dir", str(logs), "--out", str(out), "--no-extra-crops",
    ]  # fmt: skip
    env = {**os.environ, **SMALL_GRID_ENV}
    process = subprocess.Popen(
        [*argv, "--max-minutes", "30"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    resumable = logs / "convlstm.resume.pt"
    deadline = time.monotonic() + 240
    while not resumable.exists():  # written at step 0, before the first training step
        assert process.poll() is None and time.monotonic() < deadline, "no resumable state"
        time.sleep(0.5)
    time.sleep(3)  # some training steps
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 0, output[-2000:]
    steps = torch.load(resumable, weights_only=True)
    import json

    stopped_at = json.loads(steps["state"])["step"]
    assert stopped_at > 0 and out.exists()
    result = subprocess.run(
        [*argv, "--max-minutes", "0.1", "--resume", str(resumable)],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    state = json.loads(torch.load(resumable, weights_only=True)["state"])
    assert state["step"] > stopped_at and len(state["sittings"]) == 2
    assert state["sittings"][1]["from_step"] == stopped_at


def test_the_default_configuration_is_sized_for_the_cpu():
    config = default_config("convlstm")
    assert (config.patch_size, config.hidden_channels, config.inflow) == (4, (32, 32), "edge")
    paper = default_config("eulerian-convlstm")
    assert (paper.patch_size, paper.hidden_channels, paper.kernel_size) == (2, (64, 64), 3)


@pytest.mark.parametrize("k", range(8))
def test_flipped_and_rotated_windows_turn_their_motion_with_them(k):
    from model.training.batches import dihedral
    from model.training.lagrangian_train import dihedral_vectors

    frames = moving_blob(5, speed=1.5)
    frames = frames + np.roll(moving_blob(5, speed=1.0), 8, axis=1)  # a second, slower cell
    turned = dihedral(frames, k)
    expected = dihedral_vectors(motion_field(frames), k)
    measured = motion_field(np.ascontiguousarray(turned))
    wet = turned[-1] > 0.2
    assert np.abs(measured - expected)[:, wet].mean() < 0.1 * np.abs(expected)[:, wet].mean()


def test_the_differentiable_warp_trains_against_the_observed_frames():
    from model.training.lagrangian_losses import LOSS_TERMS
    from model.training.lagrangian_train import Batch, batch_loss

    frames = moving_blob(11)
    velocity = motion_field(frames[:5])
    x = torch.from_numpy(lagrangian_inputs(frames[:5], velocity))[None]
    observed = torch.from_numpy(frames[5:])[None]
    lag, inside = lagrangian_targets(frames[5:], velocity)
    batch = Batch(
        x, torch.from_numpy(lag)[None], torch.from_numpy(inside)[None],
        torch.from_numpy(velocity.astype(np.float32))[None], observed,
    )  # fmt: skip
    model = build_model(SMALL)
    for frame in ("lagrangian", "eulerian"):
        loss = batch_loss(model, batch, LOSS_TERMS["mse"], frame)
        loss.backward()
        assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
        model.zero_grad()
    # the zero start is extrapolation: small error against the observed blob in both frames
    assert float(batch_loss(model, batch, LOSS_TERMS["mse"], "eulerian")) < 1e-3


def edge_rain_and_eastward_motion(cells: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A field raining 0.6 grey on its 4 westmost columns, and 1.5 cells a step of motion east."""
    field = np.zeros((cells, cells), dtype=np.float32)
    field[:, :4] = 0.6
    velocity = np.zeros((2, cells, cells))
    velocity[0] = 1.5
    return field, velocity


def test_edge_inflow_keeps_smoothed_rain_flowing_in_from_the_upwind_edge():
    from model.advection.motion import INFLOW_SIGMA_CELLS, rain_blur_grey

    field, velocity = edge_rain_and_eastward_motion()
    field[::2, :4] = 0.5  # texture along the edge, which plain edge cells would draw out
    fields = np.repeat(field[None], 6, 0)
    zero = to_eulerian(fields, velocity, inflow="zero")
    edge = to_eulerian(fields, velocity, inflow="edge")
    # lead 6: 9 cells moved east; pysteps reads the 9 westmost columns from beyond the grid as dry
    assert not zero[5][:, :9].any()
    # the edge inflow reads the westmost column of the rain-rate blur there: rain, smoothed
    smoothed_edge = rain_blur_grey(field, INFLOW_SIGMA_CELLS)[:, 0]
    np.testing.assert_allclose(edge[5][:, :9], np.repeat(smoothed_edge[:, None], 9, 1), atol=1e-6)
    stripes = np.abs(np.diff(edge[5][:, :9], axis=0)).max()  # row to row, across the flow
    assert edge[5][:, :9].min() > 0.3 and stripes < 0.1 * np.abs(np.diff(field[:, 0])).max()
    np.testing.assert_array_equal(edge[5][:, 13:], zero[5][:, 13:])  # trajectories inside: same
    with pytest.raises(ValueError, match="valid: zero, edge"):
        to_eulerian(fields, velocity, inflow="periodic")


def test_the_torch_rain_blur_is_the_numpy_one():
    from model.advection.motion import rain_blur_grey
    from model.advection.rain_blur import rain_blurs

    field = moving_blob(1)[0].astype(np.float64)
    torch_blur = rain_blurs(torch.from_numpy(field)[None, None], (8.0,))[0, 0].numpy()
    np.testing.assert_allclose(torch_blur, rain_blur_grey(field, 8.0), atol=1e-12)


@pytest.mark.parametrize("shape", [(100, 100), (32, 45), (7, 5)])
def test_the_border_blur_is_the_full_blur_on_the_outermost_cells(shape):
    from model.advection.rain_blur import rain_blur_at_border, rain_blurs

    rng = np.random.default_rng(3)
    grey = torch.from_numpy(rng.uniform(0.0, 0.8, (2, 1, *shape)))  # float64: exact to rounding
    full = rain_blurs(grey, (8.0,))
    border = rain_blur_at_border(grey, 8.0)
    ring = torch.ones(shape, dtype=torch.bool)
    ring[1:-1, 1:-1] = False
    torch.testing.assert_close(border[..., ring], full[..., ring], atol=1e-12, rtol=0)
    assert not border[..., ~ring].any()  # nothing inside: the inflow never reads it
    single = rain_blur_at_border(grey.float(), 8.0)  # as served: float32
    assert single.dtype == torch.float32
    torch.testing.assert_close(single[..., ring].double(), full[..., ring], atol=1e-5, rtol=0)
    grey.requires_grad_(True)
    rain_blur_at_border(grey, 8.0).sum().backward()  # the training warp differentiates it
    assert grey.grad is not None and grey.grad.abs().sum() > 0


def test_a_network_that_changes_nothing_with_edge_inflow_is_extrapolation_plus_the_edge(tmp_path):
    from model.advection import advection_torch

    edge_config = replace(SMALL, inflow="edge")
    path = save_checkpoint(tmp_path / "l.safetensors", build_model(edge_config), edge_config, {})
    method = get_method("convlstm", checkpoint=path, device="cpu")
    frames = moving_blob(5)[None] + np.pad(
        moving_blob(5)[None, :, :, 6:], ((0, 0),) * 3 + ((0, 6),)
    )
    out = method(frames, 6)
    velocity = motion_field(frames[0])
    last = np.repeat(frames[0, -1:], 6, 0)
    np.testing.assert_allclose(out[0], to_eulerian(last, velocity, inflow="edge"), atol=1e-6)
    # the registered baseline that shows, live and offline, what the network adds to the inflow
    np.testing.assert_allclose(out, get_method("extrapolation-inflow")(frames, 6), atol=1e-6)
    displacements = advection_torch.lead_displacements(torch.from_numpy(velocity)[None], 6)
    inside = advection_torch.inside(displacements)[0].numpy()
    assert not inside.all()  # some rain comes from beyond the grid
    np.testing.assert_allclose(out[0][inside], get_method("extrapolation")(frames, 6)[0][inside])


def test_with_edge_inflow_the_cells_rain_flows_into_count_in_the_loss():
    from model.training.lagrangian_losses import LOSS_TERMS
    from model.training.lagrangian_train import Batch, batch_loss

    field, velocity = edge_rain_and_eastward_motion()
    inputs = torch.from_numpy(np.repeat(field[None], 5, 0))[None]
    flows_in = torch.from_numpy(to_eulerian(np.repeat(field[None], 6, 0), velocity, inflow="edge"))
    dry_inflow = torch.from_numpy(to_eulerian(np.repeat(field[None], 6, 0), velocity))  # pysteps'
    model = build_model(replace(SMALL, inflow="edge"))  # the zero start
    v = torch.from_numpy(velocity.astype(np.float32))[None]

    def loss(observed: torch.Tensor, inflow: str) -> float:
        empty = torch.zeros_like(observed)[None]
        batch = Batch(inputs, empty, empty.bool(), v, observed[None])
        return float(batch_loss(model, batch, LOSS_TERMS["mse"], "eulerian", inflow))

    assert loss(flows_in, "edge") < 1e-6
    assert loss(dry_inflow, "edge") > 0.01  # the inflow cells are scored
    assert loss(dry_inflow, "zero") < 1e-6  # with pysteps' inflow only the cells inside count


def test_the_inflow_experiment_measures_the_served_edge_inflow():
    from model.experiments.inflow_baselines import readers

    field, velocity = edge_rain_and_eastward_motion()
    field[::3, :4] = 0.45
    served = to_eulerian(field[None].astype(np.float64), velocity, inflow="edge")[0]
    rows, cols = np.mgrid[0:32, 0:32].astype(np.float64)
    coords = [rows, cols - 1.5]  # one step east: the westmost 1.5 columns come from beyond
    measured = readers()["edge, blur 8"](field.astype(np.float64), coords)
    np.testing.assert_allclose(served[:, :1], measured[:, :1], atol=1e-6)


def test_a_checkpoint_is_kept_only_if_no_worse_than_the_zero_start_at_2_and_5_mm_h():
    from model.training.lagrangian_train import TrainState, eligible

    def pooled(csi_2: float, csi_5: float, mse: float) -> dict:
        leads = 3
        return {
            "csi": {"0.5": [0.6] * leads, "2.0": [csi_2] * leads, "5.0": [csi_5] * leads},
            "rain_mse": [mse] * leads,
        }

    state = TrainState(reference_rain_mse=10.0, reference_csi={"2.0": 0.35, "5.0": 0.28})
    assert eligible(pooled(0.36, 0.28, 9.0), state)
    assert not eligible(pooled(0.40, 0.27, 9.0), state)  # heavier cores lost
    assert not eligible(pooled(0.34, 0.30, 9.0), state)
    assert not eligible(pooled(0.40, 0.30, 11.0), state)
    assert eligible(pooled(0.30, 0.20, 9.0), TrainState(reference_rain_mse=10.0))  # older runs
