"""The family's Eulerian networks (eulerian-convlstm, saconvlstm, fclstm): registry, equations,
checkpoints."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model.methods import get_method
from model.nets.architectures import build_model, default_config
from model.nets.cell import ConvLSTMCell
from model.nets.checkpoint import load_checkpoint, read_config, save_checkpoint
from model.nets.config import NetworkConfig
from model.nets.fclstm import FCEncoderForecaster
from model.nets.sa_cell import SAConvLSTMCell, SelfAttentionMemory
from model.paths import DEFAULT_CHECKPOINT, default_checkpoint
from model.training.train import transfer_weights

SMALL = NetworkConfig(in_frames=3, out_frames=4, frame_cells=16, hidden_channels=(8, 8))
ARCHITECTURES = ("eulerian-convlstm", "saconvlstm", "fclstm")
"""The networks that output logits (the Lagrangian convlstm: tests/model/test_lagrangian.py)."""


def small(architecture: str) -> NetworkConfig:
    extra = {"hidden_channels": (16, 16), "patch_size": 4} if architecture == "fclstm" else {}
    return replace(SMALL, architecture=architecture, attention_channels=8, **extra)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_architecture_forecasts_and_learns(architecture: str) -> None:
    model = build_model(small(architecture))
    x = torch.rand(2, 3, 16, 16)
    logits = model(x)
    assert logits.shape == (2, 4, 16, 16)
    grey = model.predict(x)
    assert grey.dtype == torch.float32 and float(grey.min()) >= 0 and float(grey.max()) <= 1
    F.binary_cross_entropy_with_logits(logits, torch.rand_like(logits)).backward()
    no_gradient = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert no_gradient == []


def test_unknown_architecture_is_refused_with_the_valid_names() -> None:
    with pytest.raises(ValueError, match="convlstm, eulerian-convlstm, saconvlstm, fclstm"):
        build_model(NetworkConfig(architecture="transformer"))  # the registry builds, and checks
    with pytest.raises(ValueError, match="convlstm, eulerian-convlstm, saconvlstm, fclstm"):
        default_config("rover")


def test_default_configs_are_the_radar_set_up_at_comparable_sizes() -> None:
    sizes = {}
    for architecture in ARCHITECTURES:
        config = default_config(architecture)
        assert (config.in_frames, config.out_frames, config.frame_cells) == (5, 15, 100)
        sizes[architecture] = sum(p.numel() for p in build_model(config).parameters())
    assert sizes["eulerian-convlstm"] == 2_815_492  # the shipped checkpoint's network
    # the SA memory adds about 6 %; the FC-LSTM is sized to the ConvLSTM's weight count
    assert 1.0 < sizes["saconvlstm"] / sizes["eulerian-convlstm"] < 1.2
    assert 0.7 < sizes["fclstm"] / sizes["eulerian-convlstm"] < 1.3


def test_self_attention_memory_follows_the_equations() -> None:
    torch.manual_seed(1)
    sam = SelfAttentionMemory(channels=4, attention_channels=3)
    h, m = torch.randn(1, 4, 3, 5), torch.randn(1, 4, 3, 5)
    h_next, m_next = sam(h, m)

    def conv(layer: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:  # (C, N)
        return layer(x)[0].flatten(1)

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(q.T @ k / np.sqrt(q.shape[0]), dim=1)  # (N, N), rows sum to 1
        return (v @ weights.T).reshape(1, -1, 3, 5)

    q = conv(sam.query, h)
    z_h = attend(q, conv(sam.key_h, h), conv(sam.value_h, h))
    z_m = attend(q, conv(sam.key_m, m), conv(sam.value_m, m))
    z = sam.fuse(torch.cat([z_h, z_m], 1))
    i, g, o = sam.gates(torch.cat([z, h], 1)).chunk(3, 1)
    expected_m = (1 - torch.sigmoid(i)) * m + torch.sigmoid(i) * torch.tanh(g)
    torch.testing.assert_close(m_next, expected_m, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h_next, torch.sigmoid(o) * expected_m, atol=1e-5, rtol=1e-5)


def test_attention_reaches_the_whole_grid_in_one_step_a_convolution_does_not() -> None:
    torch.manual_seed(2)
    grid = (12, 12)
    sa = SAConvLSTMCell(2, 4, 3, grid, attention_channels=4)
    conv = ConvLSTMCell(2, 4, 3, grid)
    x = torch.rand(1, 2, *grid)
    far = x.clone()
    far[0, :, 11, 11] += 1.0  # a corner; the other corner is 11 cells away
    for cell in (sa, conv):
        with torch.no_grad():
            near_corner = cell(x, None)[0][0, :, 0, 0] - cell(far, None)[0][0, :, 0, 0]
        if cell is sa:
            assert float(near_corner.abs().max()) > 1e-6
        else:
            assert float(near_corner.abs().max()) == 0.0


def test_a_1x1_state_kernel_keeps_the_state_local() -> None:
    cell = ConvLSTMCell(2, 4, 3, (8, 8), peephole=False, state_kernel_size=1)
    assert cell.state_gates is not None and cell.state_gates.kernel_size == (1, 1)
    x = torch.zeros(1, 2, 8, 8)
    h, c = torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 8, 8)
    h_poked = h.clone()
    h_poked[0, :, 4, 4] = 1.0
    out, _ = cell(x, (h, c))
    poked, _ = cell(x, (h_poked, c))
    changed = (out - poked).abs().sum(dim=1)[0] > 0
    assert changed[4, 4] and int(changed.sum()) == 1
    wide = ConvLSTMCell(2, 4, 3, (8, 8), peephole=False)
    changed = (wide(x, (h, c))[0] - wide(x, (h_poked, c))[0]).abs().sum(dim=1)[0] > 0
    assert int(changed.sum()) == 9  # the 3 x 3 neighbourhood


def test_fclstm_pools_and_flattens_the_frame() -> None:
    config = small("fclstm")
    model = build_model(config)
    assert isinstance(model, FCEncoderForecaster)
    assert model.encoder[0].gates.in_features == (16 // 4) ** 2 + 16
    # averaging in a 4 x 4 block: moving mass inside one block changes nothing
    x = torch.zeros(1, 3, 16, 16)
    x[0, :, 0, 0] = 1.0
    moved = torch.zeros(1, 3, 16, 16)
    moved[0, :, 3, 3] = 1.0
    torch.testing.assert_close(model(x), model(moved))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_checkpoints_rebuild_the_architecture_without_pickle(
    tmp_path: Path, architecture: str
) -> None:
    config = small(architecture)
    model = build_model(config).eval()
    path = save_checkpoint(tmp_path / f"{architecture}.safetensors", model, config, {})
    assert read_config(path) == config
    loaded, loaded_config, _ = load_checkpoint(path)
    assert loaded_config.architecture == architecture and type(loaded) is type(model)
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(loaded.predict(x), model.predict(x))


def test_the_shipped_checkpoints_hold_their_architecture() -> None:
    assert read_config(DEFAULT_CHECKPOINT).architecture == "convlstm"  # the Lagrangian one
    eulerian = read_config(default_checkpoint("eulerian-convlstm"))
    assert eulerian.architecture == "eulerian-convlstm" and eulerian.patch_size == 2
    assert eulerian.hidden_channels == (64, 64) and eulerian.kernel_size == 3  # the paper's


def test_a_method_refuses_a_checkpoint_of_another_architecture(tmp_path: Path) -> None:
    config = small("fclstm")
    path = save_checkpoint(tmp_path / "fc.safetensors", build_model(config), config, {})
    with pytest.raises(ValueError, match="holds a fclstm network, not saconvlstm"):
        get_method("saconvlstm", checkpoint=path)
    method = get_method("fclstm", checkpoint=path)
    out = method(np.random.default_rng(0).random((2, 3, 16, 16), dtype=np.float32), 4)
    assert out.shape == (2, 4, 16, 16) and out.dtype == np.float32


def test_a_convlstm_warm_starts_an_saconvlstm_cell_by_cell() -> None:
    convlstm = build_model(small("eulerian-convlstm"))
    sa = build_model(small("saconvlstm"))
    copied = transfer_weights(sa, convlstm)
    assert "encoder.0.conv.gates.weight" in copied and "head.weight" in copied
    assert not any(".memory." in name for name in copied)
    torch.testing.assert_close(
        sa.state_dict()["forecaster.1.conv.gates.weight"],
        convlstm.state_dict()["forecaster.1.gates.weight"],
    )
    with pytest.raises(ValueError, match="no tensor"):
        transfer_weights(build_model(small("fclstm")), torch.nn.Linear(3, 3))
