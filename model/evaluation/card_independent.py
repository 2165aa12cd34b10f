"""The model card's independent check: every method scored on radar that played no part in
training, validation or any choice (``nowcast evaluate --crops`` of another network's
composite, each crop an event of its own)."""

from __future__ import annotations

from typing import Any

from model.data.views import base_event
from model.evaluation.card import (
    brier_skill_positive,
    format_cell,
    mean_defined,
    reliability_text,
    skill_target,
    target_uncertainty,
)


def _base_events(report: dict[str, Any]) -> list[str]:
    """The events the report's crops were cut from, in order."""
    return list(dict.fromkeys(base_event(e["name"]) for e in report.get("events", [])))


def _cadence_text(cadences_min: list[float], trained_min: list[float]) -> str:
    """Whether the check's cadences lie within those the networks were trained at."""
    if not trained_min:
        return "the checkpoint does not record the cadences it was trained at"
    low, high = min(trained_min), max(trained_min)
    trained = f"{low:g} to {high:g} minutes" if low != high else f"{low:g} minutes"
    outside = [c for c in cadences_min if not low <= c <= high]
    if not outside:
        return f"within the cadences the networks were trained at ({trained})"
    longer = all(c > high for c in outside)
    shorter = all(c < low for c in outside)
    size = "a longer step than" if longer else "a shorter step than" if shorter else "unlike"
    return (
        f"the networks step one radar cycle per lead, so here each lead is {size} any they "
        f"were trained at ({trained})"
    )


def _scores_row(report: dict[str, Any], extrapolation_csi: float | None) -> str:
    csi = [mean_defined(report["csi"].get(t, [])) for t in ("0.5", "2.0", "5.0")]
    ratio = None
    if csi[0] is not None and extrapolation_csi:
        ratio = csi[0] / extrapolation_csi
    cells = [csi[0], ratio, csi[1], csi[2], mean_defined(report.get("rain_mse", []))]
    return (
        f"| {report['method']} | {report['forecasts']} | "
        + " | ".join(format_cell(v) for v in cells)
        + " |"
    )


def _probabilistic_lines(reports: list[dict[str, Any]]) -> list[str]:
    lines = []
    for rep in reports:
        scores = rep.get("probabilistic")
        if not scores:
            continue
        bss = scores["brier_skill"]
        positive = brier_skill_positive(scores)
        reliability, consistent = reliability_text(scores)
        first, last = (format_cell(bss["0.5"][k]) for k in (0, -1))
        first_2, last_2 = (format_cell(bss["2.0"][k]) for k in (0, -1))
        verdict = "Reliable" if consistent else "Not reliable"
        lines.append(
            f"- `{rep['method']}`: Brier skill {first} at the first lead and {last} at the "
            f"last at 0.5 mm/h ({first_2} and {last_2} at 2 mm/h), positive at every lead: "
            f"{positive['0.5']} at 0.5 mm/h, {positive['2.0']} at 2 mm/h. Reliability: "
            f"{reliability}. **{verdict} by the card's test.**"
        )
    return lines


def independent_check(
    reports: list[dict[str, Any]], trained_cadences_min: list[float] | None = None
) -> str:
    """Markdown: what the independent radar is, each method's means over the leads (CSI at
    0.5, 2 and 5 mm/h, rain MSE) and CSI(0.5) by lead, the skill target read there, the
    paired intervals over its crops, and the probabilistic methods' skill and reliability
    there; ``trained_cadences_min``: the cadences of the checkpoint's training events, to say
    whether the check's lie among them; an explanation where no report was given."""
    if not reports:
        return (
            "Not given (`nowcast model-card --independent JSON`, from `nowcast evaluate "
            "--crops` of events never trained on)."
        )
    first = reports[0]
    leads = first["lead_minutes"]
    bases = _base_events(first)
    cadences = sorted({float(c) for c in first.get("cadences_min", [])})
    by_method = {r["method"]: r for r in reports}
    extrapolation = by_method.get("extrapolation")
    e = mean_defined(extrapolation["csi"]["0.5"]) if extrapolation else None
    rows = [
        "| method | forecasts | CSI(0.5) | / extrapolation | CSI(2) | CSI(5) | rain MSE |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows += [_scores_row(r, e) for r in reports]
    rows += ["", "CSI(0.5) by lead:", ""]
    rows += ["| lead (min) | " + " | ".join(r["method"] for r in reports) + " |"]
    rows += ["| --- |" + " --- |" * len(reports)]
    for k, minutes in enumerate(leads):
        cells = " | ".join(format_cell(r["csi"]["0.5"][k]) for r in reports)
        rows.append(f"| {minutes:g} | {cells} |")
    probabilistic = _probabilistic_lines(reports)
    return (
        f"Radar that played no part in training, validation, the gate, the calibrations or "
        f"any choice of this card: {', '.join(f'`{n}`' for n in bases)}, "
        f"scored by `nowcast evaluate --crops` on {len(first.get('events', []))} crops "
        f"(the centre crop and the training views' places over each grid, each an event "
        f"of its own), {first['forecasts']} forecasts, every window. Leads of "
        f"{leads[0]:g} to {leads[-1]:g} minutes: "
        + _cadence_text(cadences, trained_cadences_min or [])
        + ". Means over the 15 leads:\n\n"
        + "\n".join(rows)
        + "\n\nThe skill target read on these windows: "
        + skill_target(reports)
        + "\n\n"
        + target_uncertainty(reports, split="independent-check")
        + f"\n\nThe crops are regions of {len(bases)} event(s) over the same hours, not "
        "independent events: the intervals treat them as independent, so they understate how "
        "much another day could differ."
        + (
            "\n\nProbabilities on these windows:\n" + "\n".join(probabilistic)
            if probabilistic
            else ""
        )
    )
