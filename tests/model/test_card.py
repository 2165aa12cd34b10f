"""Model card sections written from evaluation reports, training logs and the calibration."""

from __future__ import annotations

from model.evaluation.card import calibration_section, observed_events, skill_target, training_runs


def report(method: str, csi: list[float | None]) -> dict:
    return {"method": method, "lead_minutes": [5.0 * (k + 1) for k in range(len(csi))],
            "csi": {"0.5": csi}}  # fmt: skip


def test_the_skill_target_is_met_only_above_1_1_x_extrapolation_and_persistence_everywhere():
    extrapolation = report("extrapolation", [0.5, 0.4])
    persistence = report("persistence", [0.6, 0.2])
    met = skill_target([report("convlstm", [0.61, 0.4]), extrapolation, persistence])
    assert met.startswith("**Met.**")
    low = skill_target([report("convlstm", [0.7, 0.2]), extrapolation, persistence])
    assert low.startswith("**Not met.**") and "1 of 2 leads (10 min)" in low
    weak = skill_target([report("convlstm", [0.62, 0.3]), extrapolation, persistence])
    assert weak.startswith("**Not met.**") and "1.02 x extrapolation" in weak
    assert skill_target([extrapolation]).startswith("Not assessed")


def test_observed_events_names_the_events_the_scores_rest_on():
    counts = {"0.5": {"a": 0, "b": 1200}}
    text = observed_events([report("x", [0.1]), {**report("y", [0.1]),
                            "observed_event_cells_by_event": counts}])  # fmt: skip
    assert "1,200" in text and "1 of the 2 events" in text and "b (1,200 cells)" in text


def test_training_runs_tabulate_each_log():
    rows = [
        {"epoch": 1, "validation_loss": 0.2, "validation_csi_0_5": None},
        {"epoch": 2, "validation_loss": 0.1, "validation_csi_0_5": 0.3},
    ]
    table = training_runs({"run1.json": rows})
    assert "| `run1.json` | 2 | 0.1000 (2) | 0.300 (2) |" in table


def test_calibration_section_reports_with_and_without():
    assert calibration_section({}).startswith("None")
    part = {
        "windows": 4, "observed_event_cells": 10, "leads_with_observed_events": [1],
        "mean_csi_raw": 0.1, "mean_csi_calibrated": 0.3,
        "raw": {"mean_csi": 0.1, "defined_leads": 1},
        "calibrated": {"mean_csi": 0.05, "defined_leads": 2},
    }  # fmt: skip
    meta = {"calibration": {"n_quantiles": 11, "fitted_on": "train split: 8 windows",
            "use": True, "decision_rule": "rule", "validation": part,
            "train_block_cross_validation": {**part, "folds": 2}}}  # fmt: skip
    text = calibration_section(meta)
    assert "**In use: yes**" in text
    assert "| validation split | 4 | 10 | 0.100 (1) | 0.050 (2) | [1] | 0.100 | 0.300 |" in text


def test_the_skill_target_also_needs_sprog_and_the_heavier_thresholds():
    def full(method: str, csi: list[float], csi_2: list[float], mse: float) -> dict:
        return {**report(method, csi), "csi": {"0.5": csi, "2.0": csi_2, "5.0": csi_2},
                "rain_mse": [mse, mse]}  # fmt: skip

    extrapolation = full("extrapolation", [0.5, 0.4], [0.3, 0.2], 1.0)
    persistence = full("persistence", [0.4, 0.2], [0.2, 0.1], 1.5)
    convlstm = full("convlstm", [0.6, 0.45], [0.3, 0.25], 0.9)
    assert skill_target([convlstm, extrapolation, persistence]).startswith("**Met.**")
    sprog = full("sprog", [0.6, 0.5], [0.3, 0.2], 1.0)
    below = skill_target([convlstm, extrapolation, persistence, sprog])
    assert below.startswith("**Not met.**") and "below S-PROG" in below
    wetter = full("convlstm", [0.6, 0.45], [0.2, 0.1], 0.9)
    assert skill_target([wetter, extrapolation, persistence]).startswith("**Not met.**")
    assert "CSI(2) 0.150 against 0.250" in skill_target([wetter, extrapolation, persistence])


def test_the_card_attributes_the_gain_to_the_inflow_and_the_network_split_by_split():
    from model.evaluation.card_attribution import attribution_section

    def scores(csi: float) -> dict[str, float]:
        return {"csi_0_5": csi, "csi_2": csi / 2, "csi_5": 0.1, "rain_mse": 1.234}

    results = {
        "extrapolation": {"validation": scores(0.30), "test": scores(0.49)},
        "extrapolation, edge inflow": {"validation": scores(0.44), "test": scores(0.63)},
        "model/checkpoints/convlstm.safetensors": {"test": scores(0.64)},
    }
    text = attribution_section(results)
    assert "| candidate | validation | test |" in text
    both = "0.440 / 0.220 / 0.100 / 1.23 | 0.630 / 0.315 / 0.100 / 1.23"
    row = f"| extrapolation, edge inflow | {both} |"
    assert row in text
    assert "| `model/checkpoints/convlstm.safetensors` | - | 0.640 / 0.320 / 0.100 / 1.23 |" in text
    assert attribution_section(None).startswith("Not measured")


def test_the_independent_check_says_whether_its_cadence_was_trained_at():
    from model.evaluation.card_independent import _cadence_text

    assert _cadence_text([6.0], [5.0, 6.0, 10.0]).startswith("within the cadences")
    assert "a longer step than any they were trained at (5 to 10 minutes)" in _cadence_text(
        [15.0], [5.0, 6.0, 10.0]
    )
    assert "a shorter step than any they were trained at (5 minutes)" in _cadence_text([2.5], [5.0])
    assert "unlike any" in _cadence_text([2.5, 15.0], [5.0, 10.0])
    assert "does not record" in _cadence_text([15.0], [])
