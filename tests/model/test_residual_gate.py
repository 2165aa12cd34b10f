"""The residual gate (training-choices round 6): how much of the Lagrangian network's change to
the last frame each lead keeps, selected on the cross-validation folds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.experiments.residual_gate import select_gate
from model.methods import get_method
from model.nets.architectures import build_model
from model.nets.checkpoint import save_checkpoint, update_meta
from model.nets.residual_gate import apply_residual_gate, stored_gate
from tests.model.test_lagrangian import SMALL, moving_blob


def test_the_gate_blends_the_network_field_with_the_last_frame_lead_by_lead():
    rng = np.random.default_rng(0)
    fields = rng.random((2, 3, 8, 8), dtype=np.float32)
    last = rng.random((2, 8, 8), dtype=np.float32)
    out = apply_residual_gate(fields, last, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(out[:, 0], last)  # 0: the zero start
    np.testing.assert_allclose(out[:, 1], (fields[:, 1] + last) / 2, atol=1e-7)
    np.testing.assert_array_equal(out[:, 2], fields[:, 2])  # 1: the network as trained
    assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0
    with pytest.raises(ValueError, match="3 values"):
        apply_residual_gate(fields, last, [0.5, 0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        apply_residual_gate(fields, last, [0.0, 1.5, 0.2])
    assert stored_gate({}, 3) is None
    assert stored_gate({"residual_gate": {"by_lead": [1, 1, 1], "use": False}}, 3) is None
    np.testing.assert_array_equal(
        stored_gate({"residual_gate": {"by_lead": [0, 0.25, 1], "use": True}}, 3), [0, 0.25, 1]
    )


def _pooled(csi_0_5, csi_2, csi_5, mse):
    return {"csi": {"0.5": csi_0_5, "2.0": csi_2, "5.0": csi_5}, "rain_mse": mse}


def test_the_gate_rule_keeps_a_lead_s_change_only_where_it_does_no_harm_at_2_and_5_mm_h():
    no_5 = [0.1, 0.1, None, 0.1]  # no 5 mm/h event at lead 3
    pooled = {
        0.0: _pooled([0.6, 0.5, 0.4, 0.3], [0.3, 0.3, 0.2, 0.2], no_5, [1, 1, 1, 1]),
        0.5: _pooled([0.7, 0.6, 0.5, 0.3], [0.3, 0.29, 0.2, 0.2], no_5, [1, 1, 1, 1]),
        1.0: _pooled([0.8, 0.7, 0.6, 0.3], [0.3, 0.3, 0.2, 0.2], no_5, [1, 1, 2, 1]),
    }
    # lead 1: 1.0 is best and harmless; lead 2: 0.5 costs CSI(2), 1.0 does not; lead 3: 1.0
    # raises rain MSE, 0.5 does not (no 5 mm/h event there: no bar); lead 4: a tie, to 0
    assert select_gate(pooled) == [1.0, 1.0, 0.5, 0.0]
    with pytest.raises(ValueError, match="zero start"):
        select_gate({1.0: pooled[1.0]})


def test_a_stored_gate_of_zero_serves_the_zero_start_and_ungated_the_network(tmp_path):
    config = SMALL.__class__(**{**SMALL.to_dict(), "inflow": "edge"})
    model = build_model(config)
    torch.manual_seed(0)
    with torch.no_grad():  # a network that changes the field: growth everywhere
        model.head.bias[0] = 0.05
    path = save_checkpoint(tmp_path / "g.safetensors", model, config, {})
    frames = moving_blob(5)[None]
    ungated = get_method("convlstm", checkpoint=path, device="cpu")(frames, 6)
    zero_start = get_method("extrapolation-inflow")(frames, 6)
    assert np.abs(ungated - zero_start).max() > 0.01
    update_meta(path, {"residual_gate": {"by_lead": [0.0] * 6, "use": True}})
    gated = get_method("convlstm", checkpoint=path, device="cpu")
    assert gated.meta["residual_gate_applied"]
    np.testing.assert_allclose(gated(frames, 6), zero_start, atol=1e-6)
    # the gate is part of the served forecast, under any calibration
    raw = get_method("convlstm", checkpoint=path, device="cpu", calibrated=False)
    assert raw.meta["residual_gate_applied"]
    as_trained = get_method("convlstm", checkpoint=path, device="cpu", gated=False)
    assert not as_trained.meta["residual_gate_applied"]
    np.testing.assert_allclose(as_trained(frames, 6), ungated, atol=1e-6)
    update_meta(path, {"residual_gate": {"by_lead": [0.0] * 6, "use": False}})
    np.testing.assert_allclose(
        get_method("convlstm", checkpoint=path, device="cpu")(frames, 6), ungated, atol=1e-6
    )


def test_the_gate_s_pooled_tables_take_each_lead_from_its_own_gate_value():
    from model.experiments.residual_gate import lead_by_lead
    from model.verification.scores import ScoreAccumulator

    rng = np.random.default_rng(1)
    observed = rng.gamma(0.5, 2.0, (4, 3, 10, 10))
    pooled = {}
    for value in (0.0, 1.0):
        pooled[value] = ScoreAccumulator(3)
        pooled[value].add(observed * (1.0 + value) + 0.1, observed)
    mixed = lead_by_lead(pooled, [1.0, 0.0, 1.0]).scores()
    zero, one = pooled[0.0].scores(), pooled[1.0].scores()
    assert mixed["rain_mse"] == [one["rain_mse"][0], zero["rain_mse"][1], one["rain_mse"][2]]
    assert mixed["csi"]["2.0"] == [
        one["csi"]["2.0"][0],
        zero["csi"]["2.0"][1],
        one["csi"]["2.0"][2],
    ]
    assert mixed["n_cells"] == zero["n_cells"]


def test_the_card_says_what_gate_is_served_and_on_what_it_was_chosen():
    from model.evaluation.card_attribution import residual_gate_section

    scores = {"csi_0_5": 0.5, "csi_2": 0.2, "csi_5": 0.08, "rain_mse": 1.6}
    gate = {
        "by_lead": [0.0] * 4 + [0.5] * 11,
        "use": True,
        "selected_on": "round-5 fold runs",
        "pooled_folds": {"0.0": scores, "0.5": scores, "1.0": scores},
        "pooled_folds_gated": scores,
        "pooled_folds_gated_nested": {**scores, "csi_0_5": 0.499},
        "validation": {"zero start": scores, "gated": scores},
    }
    text = residual_gate_section({"residual_gate": gate})
    assert "| 0 (the zero start) | 0.500 / 0.200 / 0.080 / 1.600 |" in text
    assert "lead 1 to 15: 0, 0, 0, 0, 0.5," in text and "**in use**" in text
    assert "each fold (out of sample) | 0.499 / 0.200 / 0.080 / 1.600 |" in text
    assert "**not in use**" in residual_gate_section({"residual_gate": {**gate, "use": False}})
    assert residual_gate_section({}).startswith("None")


def test_the_nested_estimate_scores_each_fold_with_the_gate_chosen_on_the_others():
    from model.experiments.residual_gate import lead_by_lead, nested_gate_scores
    from model.verification.scores import ScoreAccumulator

    rng = np.random.default_rng(2)
    observed = rng.gamma(0.5, 2.0, (3, 15, 12, 12))

    def fold(helps: bool) -> dict:
        out = {}
        for value in (0.0, 1.0):
            acc = ScoreAccumulator(15)
            # where the network "helps" its change reaches the truth, else a wet bias
            change = observed * 0.5 if helps else observed * 2.0
            acc.add(observed * 0.5 + value * change, observed)
            out[value] = acc
        return out

    helps, harms = fold(True), fold(False)
    scores, gates = nested_gate_scores([helps, harms])
    assert gates == [[0.0] * 15, [1.0] * 15]  # each fold's gate comes from the other
    expected = lead_by_lead(helps, [0.0] * 15)
    expected.merge(lead_by_lead(harms, [1.0] * 15))
    assert scores.scores() == expected.scores()
    with pytest.raises(ValueError, match="2 folds"):
        nested_gate_scores([helps])


def test_the_uniform_rule_takes_one_value_for_every_lead_on_the_15_lead_means():
    from model.experiments.residual_gate import select_uniform_gate

    def pooled(csi_0_5: float, csi_5: float, mse: float) -> dict:
        return _pooled([csi_0_5] * 15, [0.3] * 15, [csi_5] * 15, [mse] * 15)

    candidates = {
        0.0: pooled(0.5, 0.1, 1.0),
        0.5: pooled(0.6, 0.1, 1.0),
        1.0: pooled(0.7, 0.09, 1.0),
    }
    assert select_uniform_gate(candidates) == [0.5] * 15  # 1.0 loses at 5 mm/h
    candidates[0.5] = pooled(0.6, 0.1, 1.1)  # now it raises rain MSE
    assert select_uniform_gate(candidates) == [0.0] * 15
