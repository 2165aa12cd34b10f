"""Select the residual gate of the Lagrangian ConvLSTM on the cross-validation folds
(training-choices round 6), check it on the validation split, and store it in a checkpoint.

The gate (`model.nets.residual_gate`) keeps ``a_k`` of the network's change to the last frame
at lead k. Each value of `GATE_VALUES` is scored on the round-5 fold runs, each on the windows
of the events it held out (`model.experiments.fold_scores.held_out_set`), the folds' contingency
tables pooled per lead. `select_gate` applies the rule fixed before the scores were seen: at each
lead, among the values no worse than the zero start (``a = 0``) at CSI(2), CSI(5) and rain MSE,
the one with the highest CSI(0.5) + CSI(2), a tie to the smaller value.

The served network (``--checkpoint``) is then scored gated, ungated and at its zero start on the
validation split; with ``--write-meta`` the gate is stored in its meta as ``residual_gate``,
marked for use only if the gated network passes the round-4 guards there (rain MSE, CSI(2) and
CSI(5) over the 15 leads no worse than the zero start's).

    python -m model.experiments.residual_gate ../shared/data/radar \
        --fold model/training_logs/cv/fold0.safetensors \
        --fold model/training_logs/cv/fold1.safetensors \
        --fold model/training_logs/cv/fold2.safetensors \
        --checkpoint model/checkpoints/convlstm.safetensors \
        --json docs/evaluation/residual-gate.json --write-meta
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model.experiments.smoothing_baselines import N_LEADS, accumulate, network, summary

GATE_VALUES = (0.0, 0.25, 0.5, 0.75, 1.0)
"""The gate values tried at every lead (0: the zero start; 1: the network as trained)."""

SELECTED_MMH = ("0.5", "2.0")
"""Thresholds (mm/h, score keys) whose CSI sum picks among the eligible gate values."""


def _value(values: Sequence[float | None], lead: int) -> float:
    value = values[lead]
    return float("nan") if value is None else float(value)


def eligible_at(pooled: Mapping[str, Any], zero: Mapping[str, Any], lead: int) -> bool:
    """Whether ``pooled`` scores (`model.verification.scores.ScoreAccumulator.scores`) are no
    worse than the ``zero`` start's at ``lead`` (0-based): CSI at each of the training guards'
    thresholds (`model.training.lagrangian_train.GUARDED_CSI_MMH`), and rain
    MSE. An undefined CSI on either side (no event at that lead) does not bar a value."""
    from model.training.lagrangian_train import GUARDED_CSI_MMH

    for key in GUARDED_CSI_MMH:
        mine, ref = _value(pooled["csi"][key], lead), _value(zero["csi"][key], lead)
        if np.isfinite(mine) and np.isfinite(ref) and mine < ref:
            return False
    return _value(pooled["rain_mse"], lead) <= _value(zero["rain_mse"], lead)


def select_gate(pooled_by_value: Mapping[float, Mapping[str, Any]]) -> list[float]:
    """The rule of round 6, lead by lead.

    Args:
        pooled_by_value: gate value -> pooled scores of the folds with that value at every
            lead; must hold 0.0 (the zero start).

    Returns:
        One gate value per lead: among the values `eligible_at` that lead, the one with the
        highest sum of CSI at `SELECTED_MMH`; a tie (to 1e-9) goes to the smaller value.
    """
    if 0.0 not in pooled_by_value:
        raise ValueError("the zero start (gate value 0.0) must be scored")
    zero = pooled_by_value[0.0]
    n_leads = len(zero["rain_mse"])
    gate = []
    for lead in range(n_leads):
        best_value, best_score = 0.0, -np.inf
        for value in sorted(pooled_by_value):
            pooled = pooled_by_value[value]
            if not eligible_at(pooled, zero, lead):
                continue
            score = float(np.nansum([_value(pooled["csi"][k], lead) for k in SELECTED_MMH]))
            if score > best_score + 1e-9:
                best_value, best_score = value, score
        gate.append(best_value)
    return gate


def lead_by_lead(pooled: Mapping[float, Any], gate: Sequence[float]) -> Any:
    """The `model.verification.scores.ScoreAccumulator` of the gate: lead k's counts and sums
    taken from ``pooled[gate[k]]`` (the accumulators of uniform gate values)."""
    from model.verification.scores import ScoreAccumulator

    first = pooled[gate[0]]
    out = ScoreAccumulator(first.n_leads, first.thresholds_mmh)
    for name, array in vars(out).items():
        if isinstance(array, np.ndarray):
            for lead, value in enumerate(gate):
                array[lead] = getattr(pooled[value], name)[lead]
    return out


def passes_guards(pooled: Mapping[str, Any], zero: Mapping[str, Any]) -> bool:
    """Whether ``pooled`` scores pass the training's round-4 guards against the ``zero``
    start's (`model.training.lagrangian_train.eligible`: 15-lead means of rain MSE no higher,
    of CSI at 2 and 5 mm/h no lower)."""
    from model.training.lagrangian_train import GUARDED_CSI_MMH, TrainState, eligible
    from model.training.lagrangian_validation import mean_csi, mean_rain_mse

    reference = dict(zero)
    state = TrainState(
        reference_rain_mse=mean_rain_mse(reference),
        reference_csi={t: mean_csi(reference, t) for t in GUARDED_CSI_MMH},
    )
    return eligible(dict(pooled), state)


def select_uniform_gate(pooled_by_value: Mapping[float, Mapping[str, Any]]) -> list[float]:
    """An alternative rule, measured for a later round: one value at every lead, among those
    that `passes_guards` on the 15-lead means, the one with the highest mean CSI(0.5) +
    CSI(2); a tie to the smaller value. Fewer choices than `select_gate`'s fifteen, so less
    noise."""
    from model.training.lagrangian_validation import mean_csi

    zero = pooled_by_value[0.0]
    best_value, best_score = 0.0, -np.inf
    for value in sorted(pooled_by_value):
        pooled = dict(pooled_by_value[value])
        if not passes_guards(pooled, zero):
            continue
        score = float(np.sum([mean_csi(pooled, key) for key in SELECTED_MMH]))
        if score > best_score + 1e-9:
            best_value, best_score = value, score
    return [best_value] * len(zero["rain_mse"])


def nested_gate_scores(
    by_fold: Sequence[Mapping[float, Any]],
    select: Callable[[Mapping[float, Mapping[str, Any]]], list[float]] = select_gate,
) -> tuple[Any, list[list[float]]]:
    """Each fold scored with the gate ``select`` (the rule) picks on the other folds (leave
    one fold out).

    The gate's pooled tables on the folds it was selected on overstate it; this is the
    out-of-sample estimate of the gated fold networks.

    Args:
        by_fold: per fold, gate value -> its `model.verification.scores.ScoreAccumulator` (one
            value at every lead); at least 2 folds.

    Returns:
        (the pooled accumulator of every fold under its own nested gate, the gates per fold).
    """
    from model.verification.scores import ScoreAccumulator

    if len(by_fold) < 2:
        raise ValueError("a nested estimate needs at least 2 folds")
    total, gates = None, []
    for i, own in enumerate(by_fold):
        others = {value: ScoreAccumulator(N_LEADS) for value in own}
        for j, fold in enumerate(by_fold):
            if j != i:
                for value, acc in fold.items():
                    others[value].merge(acc)
        gate = select({value: acc.scores() for value, acc in others.items()})
        scored = lead_by_lead(own, gate)
        if total is None:
            total = scored
        else:
            total.merge(scored)
        gates.append(gate)
    return total, gates


def _nested(by_fold: Sequence[Mapping[float, Any]]) -> dict[str, Any]:
    if len(by_fold) < 2:
        return {}
    scores, gates = nested_gate_scores(by_fold)
    uniform, uniform_gates = nested_gate_scores(by_fold, select_uniform_gate)
    return {
        "pooled_folds_gated_nested": summary(scores),
        "nested_gates": gates,
        # measured for a later round, not used: one value at every lead
        "pooled_folds_uniform_nested": summary(uniform),
        "nested_uniform_gates": [g[0] for g in uniform_gates],
    }


def _means(row: Mapping[str, Any]) -> dict[str, Any]:
    """A `summary` without its lead-by-lead list (what the checkpoint's meta keeps)."""
    return {k: v for k, v in row.items() if "by_lead" not in k}


def gated(forecast: Callable[[np.ndarray], np.ndarray], gate: Sequence[float]) -> Any:
    """``forecast`` (Lagrangian grey inputs -> fields) with the residual ``gate`` applied."""
    from model.nets.residual_gate import apply_residual_gate

    def gated_forecast(inputs: np.ndarray) -> np.ndarray:
        return apply_residual_gate(forecast(inputs), inputs[:, -1], gate)

    return gated_forecast


def main(argv: Sequence[str] | None = None) -> None:
    from model.data.split import split_windows
    from model.experiments.fold_scores import centre_events, held_out_sets
    from model.nets.checkpoint import load_checkpoint, update_meta
    from model.training.lagrangian_data import lagrangian_windows
    from model.training.lagrangian_validation import validation_set
    from model.verification.scores import ScoreAccumulator

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--fold", action="append", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("var/cache/lagrangian"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--write-meta", action="store_true")
    args = parser.parse_args(argv)

    events, norm = centre_events(args.folders)
    pooled = {value: ScoreAccumulator(N_LEADS) for value in GATE_VALUES}
    by_fold: list[dict[float, Any]] = []
    folds = []
    for path, meta, config, refs, data in held_out_sets(events, args.fold, args.cache, parser):
        fold_network = network(path)
        by_fold.append({})
        for value in GATE_VALUES:
            scores = ScoreAccumulator(N_LEADS)
            accumulate(scores, gated(fold_network, [value] * N_LEADS), data, norm, config.inflow)
            pooled[value].merge(scores)
            by_fold[-1][value] = scores
        folds.append(
            {"checkpoint": str(path), "fold": meta["held_out"]["fold"], "windows": len(refs)}
        )
        print(f"fold {meta['held_out']['fold']}: {len(refs)} windows", flush=True)
    pooled_scores = {value: acc.scores() for value, acc in pooled.items()}
    gate = select_gate(pooled_scores)
    print("gate by lead:", gate, flush=True)

    # the served network on the validation split: zero start, as trained, gated
    _, config, meta = load_checkpoint(args.checkpoint)
    windows, _ = split_windows(
        events, config.in_frames, N_LEADS, meta["training_data"]["block_frames"]
    )
    data = validation_set(
        lagrangian_windows(
            events, windows["validation"], config.in_frames, N_LEADS, args.cache, wet_only=False
        )
    )
    served = network(args.checkpoint)
    validation, validation_scores = {}, {}
    for name, gate_by_lead in {
        "zero start": [0.0] * N_LEADS,
        "network": [1.0] * N_LEADS,
        "gated": gate,
    }.items():
        scores = ScoreAccumulator(N_LEADS)
        accumulate(scores, gated(served, gate_by_lead), data, norm, config.inflow)
        validation[name] = summary(scores)
        validation_scores[name] = scores.scores()
    passes = passes_guards(validation_scores["gated"], validation_scores["zero start"])
    results: dict[str, Any] = {
        "gate_values": list(GATE_VALUES),
        "folds": folds,
        "pooled_folds": {str(v): summary(pooled[v]) for v in GATE_VALUES},
        # in sample for the gate (selected on these tables), beside the uniform values
        "pooled_folds_gated": summary(lead_by_lead(pooled, gate)),
        # out of sample: each fold under the gate selected on the others
        **_nested(by_fold),
        "pooled_folds_by_lead": {
            str(v): {
                "csi_0_5": s["csi"]["0.5"],
                "csi_2": s["csi"]["2.0"],
                "csi_5": s["csi"]["5.0"],
                "rain_mse": s["rain_mse"],
            }
            for v, s in pooled_scores.items()
        },
        "gate_by_lead": gate,
        "checkpoint": str(args.checkpoint),
        "validation": validation,
        "passes_validation_guards": passes,
    }
    shown = ("pooled_folds", "pooled_folds_gated", "pooled_folds_gated_nested", "validation")
    print(json.dumps({k: results.get(k) for k in shown}, indent=1))
    print("passes the validation guards:", passes)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if args.write_meta:
        update_meta(
            args.checkpoint,
            {
                "residual_gate": {
                    "by_lead": gate,
                    "use": passes,
                    "selected_on": "the pooled held-out windows of the fold runs "
                    + ", ".join(f"`{p}`" for p in args.fold),
                    "rule": "training-choices round 6",
                    "pooled_folds": {
                        value: _means(row) for value, row in results["pooled_folds"].items()
                    },
                    "pooled_folds_gated": _means(results["pooled_folds_gated"]),
                    **(
                        {"pooled_folds_gated_nested": _means(results["pooled_folds_gated_nested"])}
                        if "pooled_folds_gated_nested" in results
                        else {}
                    ),
                    "validation": {name: _means(row) for name, row in validation.items()},
                }
            },
        )


if __name__ == "__main__":
    main()
