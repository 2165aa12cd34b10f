"""Judge a probabilistic method's reliability calibration on the validation split.

The rule (the same as for the deterministic calibration: only what helps out of sample): a
method's calibration (`model/calibration/<method>.json`, fitted on the training blocks by
`model.experiments.fit_probability_calibration`) is shipped only where it lowers the validation
split's Brier score, the mean over 0.5 and 2 mm/h and the 15 leads.

    nowcast evaluate ../shared/data/radar --method M --split validation --raw --json raw.json
    nowcast evaluate ../shared/data/radar --method M --split validation --json calibrated.json
    python -m model.experiments.judge_probability_calibration raw.json calibrated.json \\
        --record docs/evaluation/probability-calibration-validation.json

prints the verdict and records it under the method's name; the exit status is 0 either way
(remove the method's calibration file when the verdict is "not shipped").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

THRESHOLDS = ("0.5", "2.0")
RULE = (
    "ship a method's calibration only where it lowers the validation split's Brier score "
    "(mean over 0.5 and 2 mm/h and the 15 leads)"
)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """Brier score and skill (means over the leads) and the cases-weighted reliability gap."""
    from model.evaluation.card import reliability_summary

    scores = report["probabilistic"]
    brier = {t: float(np.mean(scores["brier"][t])) for t in THRESHOLDS}
    return {
        "brier_mean_over_leads": brier,
        "brier_mean": float(np.mean(list(brier.values()))),
        "brier_skill_mean": {t: float(np.mean(scores["brier_skill"][t])) for t in THRESHOLDS},
        "reliability_gap_weighted": {t: reliability_summary(scores, t)[2] for t in THRESHOLDS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("raw", type=Path, help="validation evaluation with --raw")
    parser.add_argument("calibrated", type=Path, help="the same, calibrated")
    parser.add_argument("--record", type=Path, required=True, help="JSON of the verdicts")
    args = parser.parse_args()
    raw, calibrated = (json.loads(p.read_text()) for p in (args.raw, args.calibrated))
    for report, expected in ((raw, True), (calibrated, False)):
        if not str(report.get("split", "")).startswith("validation"):
            raise SystemExit("both evaluations must be of the validation split")
        if report["probability_calibration"].startswith("none") is not expected:
            raise SystemExit("give the raw evaluation first, then the calibrated one")
    if raw["method"] != calibrated["method"]:
        raise SystemExit("the two evaluations are of different methods")
    entry = {"raw": summary(raw), "calibrated": summary(calibrated)}
    entry["shipped"] = entry["calibrated"]["brier_mean"] < entry["raw"]["brier_mean"]
    record = json.loads(args.record.read_text()) if args.record.exists() else {}
    record["rule"] = RULE
    record["command"] = "python -m model.experiments.judge_probability_calibration (its docstring)"
    record.setdefault("methods", {})[raw["method"]] = entry
    args.record.write_text(json.dumps(record, indent=2) + "\n")
    verdict = "shipped" if entry["shipped"] else "not shipped"
    print(
        f"{raw['method']}: Brier {entry['raw']['brier_mean']:.5f} raw, "
        f"{entry['calibrated']['brier_mean']:.5f} calibrated: {verdict}"
    )


if __name__ == "__main__":
    main()
