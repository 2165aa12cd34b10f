"""The model card's account of where the served network's gain over extrapolation comes from:
the inflow at the grid's edge alone, a light blur with it, and the network, scored the same way
on each split by `model.experiments.smoothing_baselines` (its ``--json`` output); and whether
a network beats its zero start on events it never saw, by cross-validation over training-event
folds (`model.experiments.fold_scores`)."""

from __future__ import annotations

from typing import Any

SPLITS = ("train", "validation", "test")


def attribution_section(results: dict[str, dict[str, Any]] | None) -> str:
    """A table of CSI(0.5) / CSI(2) / CSI(5) / rain MSE per candidate and split, from a
    `smoothing_baselines` result (candidate -> split -> scores); a note when there is none."""
    if not results:
        return (
            "Not measured: run `python -m model.experiments.smoothing_baselines` and pass its "
            "JSON with `--attribution`."
        )
    splits = [s for s in SPLITS if any(s in by_split for by_split in results.values())]
    header = "| candidate | " + " | ".join(splits) + " |"
    rows = [header, "| --- |" + " --- |" * len(splits)]
    for name, by_split in results.items():
        cells = []
        for split in splits:
            r = by_split.get(split)
            scores = (r["csi_0_5"], r["csi_2"], r["csi_5"]) if r else ()
            cells.append(
                "-"
                if r is None
                else " / ".join(f"{v:.3f}" for v in scores) + f" / {r['rain_mse']:.2f}"
            )
        label = f"`{name}`" if name.endswith(".safetensors") else name
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    intro = (
        "Mean over the 15 leads of CSI(0.5) / CSI(2) / CSI(5) / rain MSE, every candidate "
        "moved along the same motion field and scored on the same windows (training blocks: "
        "centre crops, every window; the network was trained there, so its column there is "
        "not out of sample):"
    )
    return intro + "\n\n" + "\n".join(rows)


def _scores_cell(r: dict[str, Any]) -> str:
    return " / ".join(f"{r[k]:.3f}" for k in ("csi_0_5", "csi_2", "csi_5")) + (
        f" / {r['rain_mse']:.3f}"
    )


def cross_validation_section(results: dict[str, Any] | None) -> str:
    """Per fold and pooled: the fold network, its zero start and pysteps' extrapolation on the
    held-out events (`model.experiments.fold_scores`' JSON), and the verdict; a note when there
    is none."""
    if not results:
        return (
            "Not measured: train fold runs with `nowcast train --hold-out-fold K/N`, score them "
            "with `python -m model.experiments.fold_scores` and pass its JSON with "
            "`--cross-validation`."
        )
    names = list(results["pooled"])
    rows = [
        "| held out | windows | " + " | ".join(names) + " |",
        "| --- | --- |" + " --- |" * len(names),
    ]
    for fold in results["folds"]:
        label = f"fold {fold['fold']} of {fold['folds']}: {len(fold['events'])} events"
        cells = [_scores_cell(fold["scores"][n]) for n in names]
        rows.append(f"| {label} | {fold['windows']} | " + " | ".join(cells) + " |")
    total = sum(f["windows"] for f in results["folds"])
    rows.append(
        f"| **pooled** | {total} | "
        + " | ".join(_scores_cell(results["pooled"][n]) for n in names)
        + " |"
    )
    verdict = results["network_no_worse_than_zero_start"]
    worse = [
        k.replace("csi_0_5", "CSI(0.5)")
        .replace("csi_2", "CSI(2)")
        .replace("csi_5", "CSI(5)")
        .replace("rain_mse", "rain MSE")
        for k, ok in verdict.items()
        if not ok
    ]
    runs = "; ".join(
        f"fold {f['fold']}: {f.get('run', {}).get('minutes')} min, "
        f"{f.get('run', {}).get('samples_seen')} samples, selected at step {f.get('step')}"
        + (" (the zero start)" if f.get("step") == 0 else f" ({f.get('samples_seen')} samples)")
        for f in results["folds"]
    )
    outcome = (
        "Pooled over the folds, the fold networks are no worse than their zero start at every "
        "criterion."
        if not worse
        else "Pooled over the folds, the fold networks are worse than their zero start at: "
        + ", ".join(worse)
        + "."
    )
    return (
        "Each fold run trained from the zero start, without the training blocks of one fold of "
        "the training events (every view of them), and was selected on the validation split "
        f"under the usual guards ({runs}); it is scored on the "
        "held-out events' training-block windows (centre crops), beside its zero start (the "
        "extrapolation with the edge inflow) and pysteps' extrapolation on the same windows. "
        "CSI(0.5) / CSI(2) / CSI(5) / rain MSE, means over the 15 leads:\n\n"
        + "\n".join(rows)
        + "\n\n"
        + outcome
        + " These networks are shorter-trained than the served one, which also saw every "
        "training event, so this measures the approach out of sample, not the served weights."
    )


def residual_gate_section(meta: dict[str, Any]) -> str:
    """The checkpoint's residual gate (`model.nets.residual_gate`): its value per lead, the
    fold scores it was selected on, the validation check, and whether it is in use."""
    gate = meta.get("residual_gate")
    if not gate:
        return (
            "None: the network's whole change to the last frame is served. Select one with "
            "`python -m model.experiments.residual_gate ... --write-meta`."
        )
    rows = ["| gate | CSI(0.5) / CSI(2) / CSI(5) / rain MSE |", "| --- | --- |"]
    for value, scores in gate.get("pooled_folds", {}).items():
        label = {"0.0": "0 (the zero start)", "1.0": "1 (the fold networks)"}.get(value, value)
        rows.append(f"| {label} | {_scores_cell(scores)} |")
    if "pooled_folds_gated" in gate:
        rows.append(f"| the gate below (in sample) | {_scores_cell(gate['pooled_folds_gated'])} |")
    if "pooled_folds_gated_nested" in gate:
        rows.append(
            "| the rule's gate chosen on the other folds, each fold (out of sample) | "
            f"{_scores_cell(gate['pooled_folds_gated_nested'])} |"
        )
    checks = gate.get("validation", {})
    validation = "; ".join(f"{name} {_scores_cell(s)}" for name, s in checks.items())
    verdict = (
        "**in use**: the served forecast keeps that share of the network's change"
        if gate.get("use")
        else "**not in use**: the gated network fails the guards on validation, so the whole "
        "change is served"
    )
    values = ", ".join(f"{v:g}" for v in gate["by_lead"])
    return (
        "How much of the network's change to the last frame each lead keeps, "
        "`field = last + a * (network - last)`, selected by the rule of training-choices round 6 "
        f"on {gate.get('selected_on', 'the folds')}. Pooled over those held-out windows, means "
        "over the 15 leads, one value at every lead:\n\n"
        + "\n".join(rows)
        + f"\n\nThe gate, lead 1 to 15: {values}. On validation (the guards' check; "
        f"'network': as trained): {validation}. Verdict: {verdict}."
    )
