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
(remove the method's calibration file when the verdict is "not shipped"). With ``--form
NAME=FILE`` (repeatable: the validation split under another form of the calibration, e.g.
by an issue-time regime, `fit_probability_calibration --by-regime`) the forms compete with
the pooled one: the lowest Brier score wins (``form``).
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
    "(mean over 0.5 and 2 mm/h and the 15 leads); where other forms were fitted too (e.g. by "
    "an issue-time regime), the form with the lowest validation Brier score"
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
        "--form",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="the same, calibrated in another form (repeatable): the lowest Brier wins",
    )
    args = parser.parse_args()
    raw, calibrated = (json.loads(p.read_text()) for p in (args.raw, args.calibrated))
    forms: dict[str, dict[str, Any]] = {}
    for spec in args.form:
        name, sep, path = spec.partition("=")
        if not sep or not name or name == "pooled":
            raise SystemExit(f"--form {spec!r}: give NAME=FILE, NAME not 'pooled'")
        forms[name] = json.loads(Path(path).read_text())
    reports = [(raw, True), (calibrated, False)] + [(report, False) for report in forms.values()]
    for report, expected in reports:
        if not str(report.get("split", "")).startswith("validation"):
            raise SystemExit("both evaluations must be of the validation split")
        if report["probability_calibration"].startswith("none") is not expected:
            raise SystemExit("give the raw evaluation first, then the calibrated one")
    if len({report["method"] for report, _ in reports}) > 1:
        raise SystemExit("the evaluations are of different methods")
    entry: dict[str, Any] = {"raw": summary(raw), "calibrated": summary(calibrated)}
    best_name, best = "pooled", entry["calibrated"]
    if forms:
        entry["forms"] = {name: summary(report) for name, report in forms.items()}
        for name, scores in entry["forms"].items():
            if scores["brier_mean"] < best["brier_mean"]:
                best_name, best = name, scores
        entry["form"] = best_name
    entry["shipped"] = best["brier_mean"] < entry["raw"]["brier_mean"]
    record = json.loads(args.record.read_text()) if args.record.exists() else {}
    record["rule"] = RULE
    record["command"] = "python -m model.experiments.judge_probability_calibration (its docstring)"
    record.setdefault("methods", {})[raw["method"]] = entry
    args.record.write_text(json.dumps(record, indent=2) + "\n")
    verdict = "shipped" if entry["shipped"] else "not shipped"
    if "form" in entry:
        others = "; ".join(
            f"{name} {scores['brier_mean']:.5f}" for name, scores in entry["forms"].items()
        )
        verdict += f" ({entry['form']}; {others})"
    print(
        f"{raw['method']}: Brier {entry['raw']['brier_mean']:.5f} raw, "
        f"{entry['calibrated']['brier_mean']:.5f} calibrated: {verdict}"
    )


if __name__ == "__main__":
    main()
