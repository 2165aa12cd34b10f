"""Calibration alternative, measured: match each forecast to its own last input frame.

Instead of the per-lead tables of `model.verification.calibration`, every forecast frame's
distribution is matched to that of the newest observed frame (pysteps'
`nonparam_match_empirical_cdf`: ranks
kept, values taken from the observation, forecast zeros kept). This prints the mean CSI at
0.5 mm/h over the leads with observed events, raw against matched, on the checkpoint's train
and validation windows: the sets `nowcast calibrate` judges on (never the test split).

    python -m model.experiments.last_input_matching ../shared/data/radar [--checkpoint CKPT]

Recorded in docs/evaluation/training-choices.md (not adopted: the tables scored higher).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def match_to_last_input(forecast_grey: np.ndarray, last_input_grey: np.ndarray) -> np.ndarray:
    """Each (H, W) frame of ``forecast_grey`` (N, L, H, W) matched to ``last_input_grey[n]``."""
    from pysteps.postprocessing.probmatching import nonparam_match_empirical_cdf

    out = np.empty_like(forecast_grey)
    for n, frames in enumerate(forecast_grey):
        for k, frame in enumerate(frames):
            out[n, k] = nonparam_match_empirical_cdf(frame, last_input_grey[n])
    return out


def main(argv: Sequence[str] | None = None) -> None:
    from ingest.ingestor import norm_params_for
    from ingest.settings import get_ingest_settings
    from model.data.events import event_folders, load_event
    from model.data.split import split_windows
    from model.evaluation.calibration_fit import collect_forecasts, compare, csi_summary
    from model.methods import get_method
    from model.nets.checkpoint import load_checkpoint
    from model.paths import default_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--checkpoint", type=Path, default=default_checkpoint("eulerian-convlstm"))
    args = parser.parse_args(argv)

    settings = get_ingest_settings()
    events = [load_event(folder, settings) for folder in event_folders(args.folders)]
    _, config, meta = load_checkpoint(args.checkpoint)
    windows, _ = split_windows(
        events, config.in_frames, config.out_frames, meta["training_data"]["block_frames"]
    )
    method = get_method("eulerian-convlstm", checkpoint=args.checkpoint, calibrated=False)
    norm = norm_params_for(settings, events[0].site_id)
    for split in ("train", "validation"):
        refs, forecast, truth = collect_forecasts(method, events, windows[split])
        last = np.stack([events[w.event_index].grey[w.start + config.in_frames - 1] for w in refs])
        raw = csi_summary(forecast, truth, norm)
        matched = csi_summary(match_to_last_input(forecast, last), truth, norm)
        judged = compare(raw, matched)
        print(
            f"{split}: {len(refs)} windows, leads with observed events "
            f"{judged['leads_with_observed_events']}; mean CSI(0.5) raw "
            f"{judged['mean_csi_raw']:.3f}, matched to the last input "
            f"{judged['mean_csi_calibrated']:.3f}"
        )


if __name__ == "__main__":
    main()
