"""The ConvLSTM cell and the encoder-forecaster: equations, shapes, state flow, learning."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from model.nets.architectures import build_model
from model.nets.cell import ConvLSTMCell, State
from model.nets.config import NetworkConfig
from model.nets.convlstm import EncoderForecaster
from model.nets.network import count_parameters

SMALL = NetworkConfig(in_frames=5, out_frames=3, frame_cells=16, hidden_channels=(8, 8))


def moving_square(batch: int, frames: int, cells: int, side: int = 4) -> Tensor:
    """(batch, frames, cells, cells) grey: a bright square moving one cell right per frame."""
    out = torch.zeros(batch, frames, cells, cells)
    for b in range(batch):
        row = 2 + 3 * b
        for t in range(frames):
            col = 1 + t
            out[b, t, row : row + side, col : col + side] = 0.9
    return out


# --- config -------------------------------------------------------------------------------


def test_config_defaults_are_the_paper() -> None:
    c = NetworkConfig()
    assert (c.in_frames, c.out_frames, c.frame_cells, c.patch_size) == (5, 15, 100, 2)
    assert (c.hidden_channels, c.kernel_size, c.peephole) == ((64, 64), 3, True)
    assert (c.grid_cells, c.patch_channels) == (50, 4)


def test_config_dict_round_trip_and_unknown_keys() -> None:
    assert NetworkConfig.from_dict(SMALL.to_dict()) == SMALL
    with pytest.raises(ValueError, match="unknown"):
        NetworkConfig.from_dict({**SMALL.to_dict(), "hiden_channels": [8]})


@pytest.mark.parametrize(
    "bad",
    [
        {"frame_cells": 15},
        {"patch_size": 0},
        {"kernel_size": 4},
        {"hidden_channels": ()},
        {"hidden_channels": (8, 0)},
        {"in_frames": True},
        {"peephole": 1},
    ],
)
def test_config_rejects_invalid_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        NetworkConfig(**bad)  # type: ignore[arg-type]


# --- cell ---------------------------------------------------------------------------------


def reference_cell(
    cell: ConvLSTMCell, x: Tensor | None, h: Tensor, c: Tensor
) -> tuple[Tensor, Tensor]:
    """METHOD.md's equations with eight separate convolutions cut out of the fused weights."""
    n_in, hid = cell.in_channels, cell.hidden_channels
    weight, bias = cell.gates.weight, cell.gates.bias
    assert bias is not None
    pad = weight.shape[-1] // 2

    def pre(k: int) -> Tensor:
        rows = slice(k * hid, (k + 1) * hid)
        w_x, w_h = weight[rows, :n_in], weight[rows, n_in:]
        total = F.conv2d(h, w_h, padding=pad) + bias[rows].view(1, -1, 1, 1)
        if x is not None:
            total = total + F.conv2d(x, w_x, padding=pad)
        return total

    zero = torch.zeros_like(c)
    w_ci = cell.w_ci if cell.w_ci is not None else zero
    w_cf = cell.w_cf if cell.w_cf is not None else zero
    w_co = cell.w_co if cell.w_co is not None else zero
    i = torch.sigmoid(pre(0) + w_ci * c)
    f = torch.sigmoid(pre(1) + w_cf * c)
    c_next = f * c + i * torch.tanh(pre(2))
    o = torch.sigmoid(pre(3) + w_co * c_next)
    return o * torch.tanh(c_next), c_next


@pytest.mark.parametrize(("n_in", "peephole"), [(3, True), (3, False), (0, True)])
def test_cell_matches_the_equations(n_in: int, peephole: bool) -> None:
    cell = ConvLSTMCell(n_in, 5, 3, (6, 7), peephole=peephole).double()
    with torch.no_grad():  # non-zero peepholes and biases so every term is exercised
        for p in cell.parameters():
            p.uniform_(-0.5, 0.5)
    x = torch.randn(2, n_in, 6, 7, dtype=torch.float64) if n_in else None
    h, c = torch.randn(2, 2, 5, 6, 7, dtype=torch.float64)
    out, (h_next, c_next) = cell(x, (h, c))
    ref_h, ref_c = reference_cell(cell, x, h, c)
    assert out is h_next
    torch.testing.assert_close(h_next, ref_h, atol=1e-5, rtol=0)
    torch.testing.assert_close(c_next, ref_c, atol=1e-5, rtol=0)


def test_cell_float32_matches_reference_and_zero_state() -> None:
    cell = ConvLSTMCell(4, 8, 3, (5, 5))
    with torch.no_grad():
        for name in ("w_ci", "w_cf", "w_co"):
            getattr(cell, name).uniform_(-0.5, 0.5)
    x = torch.randn(3, 4, 5, 5)
    out, (h, c) = cell(x, None)
    ref_h, ref_c = reference_cell(cell, x, torch.zeros(3, 8, 5, 5), torch.zeros(3, 8, 5, 5))
    torch.testing.assert_close(h, ref_h, atol=1e-5, rtol=0)
    torch.testing.assert_close(c, ref_c, atol=1e-5, rtol=0)
    assert out.shape == (3, 8, 5, 5)


def test_cell_initialisation_and_input_checks() -> None:
    cell = ConvLSTMCell(2, 4, 3, (5, 5))
    assert cell.gates.bias is not None
    bias = cell.gates.bias.detach()
    assert torch.equal(bias[4:8], torch.ones(4))  # forget gate
    assert torch.equal(torch.cat([bias[:4], bias[8:]]), torch.zeros(12))
    assert cell.gates.in_channels == 6 and cell.gates.out_channels == 16
    assert cell.w_ci is not None and cell.w_ci.shape == (1, 4, 5, 5)
    with pytest.raises(ValueError):
        cell(None, None)
    with pytest.raises(ValueError):
        cell(torch.zeros(1, 3, 5, 5), None)
    no_input = ConvLSTMCell(0, 4, 3, (5, 5))
    with pytest.raises(ValueError):
        no_input(None, None)
    with pytest.raises(ValueError):
        no_input(torch.zeros(1, 0, 5, 5), no_input.zero_state(1, torch.device("cpu")))


# --- model --------------------------------------------------------------------------------


def test_shapes_and_ranges() -> None:
    model = build_model(SMALL)
    x = torch.rand(3, 5, 16, 16)
    logits = model(x)
    assert logits.shape == (3, SMALL.out_frames, 16, 16)
    assert logits.dtype == torch.float32
    grey = model.predict(x)
    assert grey.shape == logits.shape and not grey.requires_grad
    assert float(grey.min()) >= 0.0 and float(grey.max()) <= 1.0
    torch.testing.assert_close(grey, torch.sigmoid(logits.detach()))
    with pytest.raises(ValueError):
        model(torch.rand(3, 4, 16, 16))
    with pytest.raises(ValueError):
        model(torch.rand(3, 5, 18, 18))


def expected_parameters(config: NetworkConfig) -> int:
    """Independent count: fused conv weights + biases (+ 3 peepholes) per cell, 1 x 1 head."""
    k, grid, hidden = config.kernel_size, config.grid_cells, config.hidden_channels
    total = 0
    for first_in in (config.patch_size**2, 0):  # encoder, forecaster (no input)
        inputs = (first_in, *hidden[:-1])
        for n_in, n_h in zip(inputs, hidden, strict=True):
            total += (n_in + n_h) * 4 * n_h * k * k + 4 * n_h
            if config.peephole:
                total += 3 * n_h * grid * grid
    return total + sum(hidden) * config.patch_size**2 + config.patch_size**2


def test_paper_config_parameter_count() -> None:
    config = NetworkConfig()
    model = build_model(config)
    assert count_parameters(model) == expected_parameters(config) == 2_815_492
    print(f"default paper config: {count_parameters(model):,} parameters")


def test_peephole_switch_changes_parameter_count() -> None:
    with_peep = count_parameters(build_model(SMALL))
    without = count_parameters(build_model(replace(SMALL, peephole=False)))
    grid = SMALL.grid_cells
    assert with_peep - without == 4 * 3 * 8 * grid * grid  # 4 cells, 3 peepholes each
    assert without == expected_parameters(replace(SMALL, peephole=False))


def test_forecaster_starts_from_the_encoder_final_states() -> None:
    model = build_model(SMALL)
    encoder_states: list[list[State]] = [[] for _ in model.encoder]
    forecaster_first: list[State | None] = [None for _ in model.forecaster]
    forecaster_calls = [0 for _ in model.forecaster]

    def record_encoder(layer: int) -> Callable[..., None]:
        def hook(_module: object, _args: object, output: tuple[Tensor, State]) -> None:
            encoder_states[layer].append(output[1])

        return hook

    def record_forecaster(layer: int) -> Callable[..., None]:
        def hook(_module: object, args: tuple[Tensor | None, State]) -> None:
            if forecaster_first[layer] is None:
                forecaster_first[layer] = args[1]
            assert args[0] is None if layer == 0 else args[0] is not None
            forecaster_calls[layer] += 1

        return hook

    handles = [
        cell.register_forward_hook(record_encoder(i)) for i, cell in enumerate(model.encoder)
    ] + [
        cell.register_forward_pre_hook(record_forecaster(i))
        for i, cell in enumerate(model.forecaster)
    ]
    model(torch.rand(2, 5, 16, 16))
    for handle in handles:
        handle.remove()
    assert forecaster_calls == [SMALL.out_frames] * len(model.forecaster)
    for layer, first in enumerate(forecaster_first):
        assert len(encoder_states[layer]) == SMALL.in_frames
        last_h, last_c = encoder_states[layer][-1]
        assert first is not None
        assert first[0] is last_h and first[1] is last_c


def test_inputs_reach_every_lead() -> None:
    model = build_model(SMALL)
    x = torch.rand(2, 5, 16, 16)
    base = model.predict(x)
    changed = x.clone()
    changed[:, 0] = 1.0 - changed[:, 0]  # only the OLDEST frame differs
    after = model.predict(changed)
    diff = (after - base).abs().flatten(2).amax(dim=2)  # (B, out_frames)
    assert bool((diff > 0).all())
    assert not torch.equal(base[:, 0], base[:, 1])  # the steps are distinct forecasts


def test_batch_elements_are_independent() -> None:
    model = build_model(SMALL)
    x = torch.rand(3, 5, 16, 16)
    together = model.predict(x)
    alone = model.predict(x[1:2])
    torch.testing.assert_close(together[1:2], alone, atol=1e-6, rtol=0)


def test_overfits_one_batch_of_a_moving_square() -> None:
    model = build_model(SMALL)
    frames = moving_square(2, SMALL.in_frames + SMALL.out_frames, SMALL.frame_cells)
    x, y = frames[:, : SMALL.in_frames], frames[:, SMALL.in_frames :]
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    losses = []
    for _ in range(50):
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] <= 0.5 * losses[0], losses


def test_bf16_autocast_on_cpu_is_close_to_fp32() -> None:
    model = build_model(SMALL)
    x = torch.rand(2, 5, 16, 16)
    fp32 = model.predict(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = model.predict(x)
    assert bf16.dtype == torch.float32
    assert float((bf16 - fp32).abs().max()) < 2e-2


def test_channels_last_gives_the_same_forecast() -> None:
    model = build_model(SMALL)
    x = torch.rand(2, 5, 16, 16)
    reference = model.predict(x)
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    assert isinstance(model, EncoderForecaster)
    out = model.predict(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda() -> None:
    model = build_model(SMALL)
    x = torch.rand(2, 5, 16, 16)
    reference = model.predict(x)
    out = model.to("cuda").predict(x.to("cuda")).cpu()
    torch.testing.assert_close(out, reference, atol=1e-3, rtol=0)
