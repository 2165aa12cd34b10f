"""The convlstm method through the command line, and the model card written from files."""

from __future__ import annotations

import json

import numpy as np

from ingest.cf_writer import write_synthetic_feed
from model.data.views import crop_origins
from model.methods import get_method
from model.nets.architectures import build_model
from model.nets.checkpoint import save_checkpoint
from model.nets.config import NetworkConfig
from tests.model.helpers import SMALL_GRID_ENV, run_cli

TINY = NetworkConfig(frame_cells=32, hidden_channels=(4, 4))  # the paper's Eulerian network
TINY_LAGRANGIAN = NetworkConfig(frame_cells=32, hidden_channels=(4, 4), architecture="convlstm")


def test_convlstm_method_runs_a_checkpoint_and_the_card_tabulates_it(tmp_path):
    checkpoint = tmp_path / "tiny.safetensors"
    meta = {
        "training_data": {"events": [], "block_frames": 30, "windows": {"train": 1}, "blocks": []},
        "train_config": {"batch_size": 4, "augment": True, "bf16": False},
        "epoch": 1,
        "samples_seen": 4,
        "validation": {"loss": 0.5},
        "device": "cpu",
    }
    save_checkpoint(checkpoint, build_model(TINY_LAGRANGIAN), TINY_LAGRANGIAN, meta)
    method = get_method("convlstm", checkpoint=checkpoint)
    out = method(np.zeros((2, 5, 32, 32), np.float32), 15)
    assert out.shape == (2, 15, 32, 32) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0

    feed = tmp_path / "event"
    write_synthetic_feed(feed, 21, site_id="s-1", shape=(96, 96))
    result = run_cli(
        "evaluate",
        str(feed),
        "--method",
        "convlstm",
        "--checkpoint",
        str(checkpoint),
        "--json",
        str(tmp_path / "c.json"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["method"] == "convlstm" and report["forecasts"] == 2

    card = tmp_path / "CARD.md"
    result = run_cli(
        "model-card",
        str(tmp_path / "c.json"),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(card),
        "--command",
        "nowcast evaluate ...",
        "--independent",
        str(tmp_path / "c.json"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = card.read_text()
    assert "| convlstm | 2 |" in text and "nowcast evaluate ..." in text
    independent = text.split("## An independent check", 1)[1].split("\n## ", 1)[0]
    assert "| convlstm | 2 | " in independent  # its row, beside the baselines it was given
    assert "Not assessed: the convlstm, extrapolation and persistence" in independent


def test_calibrate_fits_on_the_train_blocks_and_rewrites_the_checkpoint(tmp_path):
    from model.data.events import load_event
    from model.data.split import assign_blocks
    from model.nets.checkpoint import load_checkpoint
    from service.settings import Settings

    feed = tmp_path / "feed" / "ev"
    write_synthetic_feed(feed, 120, site_id="s-1", shape=(96, 96))
    small_grid = Settings(crop_cells=64, target_cells=32, disk_radius_cells=3)  # as run_cli's
    event = load_event(feed, small_grid, name="feed/ev")  # the CLI's name for the folder
    blocks = [b.__dict__ for b in assign_blocks([event], 20)]
    checkpoint = tmp_path / "tiny.safetensors"
    meta = {"training_data": {"block_frames": 20, "blocks": blocks}}
    save_checkpoint(checkpoint, build_model(TINY), TINY, meta)

    result = run_cli(
        "calibrate", str(feed), "--checkpoint", str(checkpoint), "--quantiles", "11",
        "--folds", "2", "--json", str(tmp_path / "cal.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "cal.json").read_text())
    assert record["fitted_on"].startswith("train split: 4 windows")
    assert record["validation"]["windows"] == 1 and isinstance(record["use"], bool)
    _, _, stored = load_checkpoint(checkpoint)  # same weights digest: it still loads
    assert len(stored["calibration"]["forecast_grey"]) == 15
    assert stored["calibration"]["use"] == record["use"]

    result = run_cli(
        "evaluate", str(feed), "--method", "eulerian-convlstm", "--checkpoint", str(checkpoint),
        "--raw", "--split", "validation", "--json", str(tmp_path / "raw.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    raw = json.loads((tmp_path / "raw.json").read_text())
    assert raw["method"] == "eulerian-convlstm-raw" and raw["calibration_applied"] is False

    meta["training_data"]["blocks"] = blocks[:-1]  # not the split these events give
    save_checkpoint(checkpoint, build_model(TINY), TINY, meta)
    result = run_cli("calibrate", str(feed), "--checkpoint", str(checkpoint), "--dry-run")
    assert result.returncode != 0 and "time blocks" in result.stderr


def test_train_evaluate_and_describe_another_architecture_by_name(tmp_path):
    feed = tmp_path / "event"
    write_synthetic_feed(feed, 120, site_id="s-1", shape=(96, 96))
    checkpoint = tmp_path / "fclstm.safetensors"
    result = run_cli(
        "train", str(feed), "--arch", "fclstm", "--hidden", "8,8", "--max-epochs", "1",
        "--block-frames", "20", "--out", str(checkpoint), "--log-dir", str(tmp_path / "logs"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    result = run_cli(
        "evaluate", str(feed), "--method", "fclstm", "--checkpoint", str(checkpoint),
        "--split", "test", "--block-frames", "20", "--json", str(tmp_path / "f.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "f.json").read_text())
    assert report["method"] == "fclstm" and report["forecasts"] > 0
    # the convlstm method refuses the file: it holds another network
    result = run_cli(
        "evaluate", str(feed), "--method", "eulerian-convlstm", "--checkpoint", str(checkpoint)
    )
    assert result.returncode != 0 and "holds a fclstm network" in result.stderr
    card = tmp_path / "CARD.md"
    convlstm = tmp_path / "convlstm.safetensors"
    save_checkpoint(convlstm, build_model(TINY), TINY, {"epoch": 1})
    result = run_cli(
        "model-card", str(tmp_path / "f.json"), "--checkpoint", str(convlstm),
        "--other", str(checkpoint), "--out", str(card),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    text = card.read_text()
    assert "| `fclstm` | frame average-pooled by 4 and flattened (64 values)" in text
    assert "| fclstm |" in text  # its scores in the verification table


def test_an_unknown_architecture_is_refused_before_loading_anything(tmp_path):
    result = run_cli("train", str(tmp_path), "--arch", "unet")
    message = " ".join(result.stderr.replace("│", " ").split())
    assert result.returncode != 0 and "convlstm, eulerian-convlstm, saconvlstm, fclstm" in message


def test_evaluate_takes_odim_composites_as_it_takes_netcdf_frames(shared_odim, tmp_path):
    result = run_cli(
        "evaluate", str(shared_odim), "--method", "persistence", "--json", str(tmp_path / "o.json")
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "o.json").read_text())
    assert report["forecasts"] == len(list(shared_odim.rglob("*.hdf"))) - 19  # 5 in + 15 out
    assert report["lead_minutes"][0] == 15.0


def test_evaluate_scores_an_ensemble_probabilistically_and_compare_draws_its_reliability(
    tmp_path,
):
    """`nowcast evaluate --method steps`: the ensemble mean scored like any method, and the
    Brier skill, reliability, ROC, CRPS and rank histogram of its members beside it; the card
    tabulates them and --compare draws the reliability diagrams."""
    from model.evaluation.card import probabilistic_section

    feed = tmp_path / "event"
    write_synthetic_feed(feed, 22, site_id="s-1", shape=(96, 96), seed=4)
    result = run_cli("evaluate", str(feed), "--method", "steps", "--json", str(tmp_path / "s.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["method"] == "steps" and report["forecasts"] == 3
    assert report["ensemble_members"] == 20
    scores = report["probabilistic"]
    assert len(scores["crps"]) == 15 and all(v >= 0 for v in scores["crps"])
    assert len(scores["rank_histogram"][0]) == 21
    assert {"reliability_band", "reliability_band_events", "reliability_band_events_t"} <= set(
        scores
    )
    assert abs(sum(scores["rank_histogram"][0]) - 1.0) < 1e-9
    # in each issue-time regime family, the reliability per label adds up to the pooled one
    assert set(scores["reliability_by_regime"]) == {"wet-fraction", "new-echoes"}
    for family, by_label in scores["reliability_by_regime"].items():
        assert sum(scores["forecasts_by_regime"][family].values()) == 3
        counts = [np.asarray(label["0.5"][0]["count"]) for label in by_label.values()]
        assert (sum(counts) == np.asarray(scores["reliability"]["0.5"][0]["count"])).all()
    assert all(v is None or v <= 1.0 for v in scores["brier_skill"]["0.5"])
    assert report["csi"]["0.5"][0] is not None  # the mean, scored deterministically
    assert "| 6 |" in probabilistic_section([report])  # the card's table, lead by lead

    result = run_cli(
        "evaluate", "--compare", str(tmp_path / "s.json"), "--plot", str(tmp_path / "c.png")
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "c-reliability.png").stat().st_size > 10_000


def test_evaluate_scores_every_crop_of_a_large_grid_as_an_event_of_its_own(tmp_path):
    """`nowcast evaluate --crops`: the centre crop and each crop of the grid at the training
    views' places (`crop_origins`) is one event of the report, with its own counts; the
    training split's blocks cannot be asked for with it."""
    feed = tmp_path / "composite"
    write_synthetic_feed(feed, 20, site_id="s-1", shape=(72, 150), seed=3)
    out = tmp_path / "crops.json"
    result = run_cli(
        "evaluate", str(feed), "--method", "persistence", "--crops", "--json", str(out)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    names = [e["name"] for e in report["events"]]
    size = int(SMALL_GRID_ENV["NOWCAST_CROP_CELLS"]) + 2 * int(
        SMALL_GRID_ENV["NOWCAST_DISK_RADIUS_CELLS"]
    )  # run_cli's grid: 64-cell crops, 3-cell disk
    centre = ((72 - size) // 2, (150 - size) // 2)
    expected = [f"r{r}c{c}" for r, c in crop_origins((72, 150), size) if (r, c) != centre]
    assert names[0].endswith("/composite") and len(expected) >= 2
    assert [n.split("@", 1)[1] for n in names[1:]] == expected
    assert report["forecasts"] == len(names)  # 20 frames: one window per crop
    assert set(report["counts_by_event"]) == set(names)

    refused = run_cli("evaluate", str(feed), "--crops", "--split", "test")
    assert refused.returncode != 0 and "--split all" in refused.stderr.replace("│", " ")

    # the card's independent check reads such reports: the target and its intervals over crops
    from model.evaluation.card_independent import independent_check

    checkpoint = tmp_path / "tiny.safetensors"
    save_checkpoint(checkpoint, build_model(TINY_LAGRANGIAN), TINY_LAGRANGIAN, {})
    reports = [report]
    for method, extra in (("extrapolation", []), ("convlstm", ["--checkpoint", str(checkpoint)])):
        path = tmp_path / f"{method}.json"
        result = run_cli(
            "evaluate", str(feed), "--method", method, "--crops", "--json", str(path), *extra
        )
        assert result.returncode == 0, result.stderr[-2000:]
        reports.append(json.loads(path.read_text()))
    text = independent_check(reports)
    assert f"`{names[0]}`, scored" in text  # the composite the crops were cut from
    assert f"on {len(names)} crops" in text and f"| extrapolation | {len(names)} | " in text
    assert "| 1.000 |" in text  # extrapolation against itself
    assert "CSI(0.5) by lead:" in text
    assert all(f"\n| {m:g} | " in text for m in report["lead_minutes"])
    assert "Target: convlstm mean CSI" in text  # the skill target, read on these windows
    assert f"jackknife-t over the {len(names)} independent-check events" in text
