"""Fit a probabilistic method's reliability calibration from its training-block evaluation.

    nowcast evaluate ../shared/data/radar --method steps --split train --raw --json train.json
    python -m model.experiments.fit_probability_calibration train.json [--by-regime NAME]

writes ``model/calibration/<method>.json`` (`model.verification.probability_calibration`),
which the inference worker and ``nowcast evaluate`` (unless ``--raw``) then apply. Only the
training blocks are used; the test split plays no part.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", type=Path, help="nowcast evaluate --split train --json output")
    parser.add_argument("--out-dir", type=Path, default=None)
    parser.add_argument(
        "--by-regime",
        metavar="NAME",
        default=None,
        help="one set of tables per label of this issue-time regime family "
        "(model.verification.issue_regimes: wet-fraction, new-echoes), from the report's "
        "reliability_by_regime",
    )
    args = parser.parse_args()

    from model.verification.issue_regimes import get_regime
    from model.verification.probability_calibration import CALIBRATION_DIR, fit_calibration

    report = json.loads(args.report.read_text())
    if "train" not in str(report.get("split", "")):
        raise SystemExit(f"{args.report} is not a training-split evaluation: refusing to fit on it")
    if report.get("probability_calibration", "none").startswith("none") is False:
        raise SystemExit(f"{args.report} scored calibrated probabilities: evaluate with --raw")
    fitted_on = f"training blocks: {report['forecasts']} forecasts ({report['split']})"
    try:
        if args.by_regime:
            family = get_regime(args.by_regime)
            counts = report["probabilistic"].get("forecasts_by_regime", {}).get(family.name, {})
            per_label = ", ".join(f"{label} {n}" for label, n in counts.items())
            fitted_on += (
                f", by issue-time regime {family.name} ({family.description}; forecasts: "
                f"{per_label})"
            )
        calibration = fit_calibration(report, fitted_on, regime=args.by_regime)
    except ValueError as error:
        raise SystemExit(f"{args.report}: {error}") from error
    folder = args.out_dir or CALIBRATION_DIR
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{calibration.method}.json"
    out.write_text(calibration.to_json() + "\n")
    tables = sum(len(lead) for lead in calibration.points)
    print(f"wrote {out}: {tables} tables (lead x threshold), {fitted_on}")


if __name__ == "__main__":
    main()
