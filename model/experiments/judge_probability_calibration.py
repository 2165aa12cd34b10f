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
(remove the method's calibration file when the verdict is "not shipped"). With ``--by-regime
BY_REGIME.json`` (the validation split calibrated by issue-time regime, `fit_probability_calibration
--by-regime`) the pooled and the by-regime forms compete: the lower Brier score wins (``form``).
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
    "(mean over 0.5 and 2 mm/h and the 15 leads); where a calibration by issue-time regime "
    "was fitted too, the form (pooled or by regime) with the lower validation Brier score"
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
    parser.add_argument(
        "--by-regime",
        type=Path,
        default=None,
        help="the same, calibrated by issue-time regime: the form with the lower Brier wins",
    )
    args = parser.parse_args()
    raw, calibrated = (json.loads(p.read_text()) for p in (args.raw, args.calibrated))
    by_regime = json.loads(args.by_regime.read_text()) if args.by_regime else None
    reports = [(raw, True), (calibrated, False)] + ([(by_regime, False)] if by_regime else [])
    for report, expected in reports:
        if not str(report.get("split", "")).startswith("validation"):
            raise SystemExit("both evaluations must be of the validation split")
        if report["probability_calibration"].startswith("none") is not expected:
            raise SystemExit("give the raw evaluation first, then the calibrated one")
    if len({report["method"] for report, _ in reports}) > 1:
        raise SystemExit("the evaluations are of different methods")
    entry: dict[str, Any] = {"raw": summary(raw), "calibrated": summary(calibrated)}
    best = entry["calibrated"]
    if by_regime is not None:
        entry["calibrated_by_regime"] = summary(by_regime)
        if entry["calibrated_by_regime"]["brier_mean"] < best["brier_mean"]:
            best = entry["calibrated_by_regime"]
        entry["form"] = "by regime" if best is entry["calibrated_by_regime"] else "pooled"
    entry["shipped"] = best["brier_mean"] < entry["raw"]["brier_mean"]
    record = json.loads(args.record.read_text()) if args.record.exists() else {}
    record["rule"] = RULE
    record["command"] = "python -m model.experiments.judge_probability_calibration (its docstring)"
    record.setdefault("methods", {})[raw["method"]] = entry
    args.record.write_text(json.dumps(record, indent=2) + "\n")
    verdict = "shipped" if entry["shipped"] else "not shipped"
    if "form" in entry:
        verdict += (
            f" ({entry['form']}; by regime {entry['calibrated_by_regime']['brier_mean']:.5f})"
        )
    print(
        f"{raw['method']}: Brier {entry['raw']['brier_mean']:.5f} raw, "
        f"{entry['calibrated']['brier_mean']:.5f} calibrated: {verdict}"
    )


if __name__ == "__main__":
    main()
