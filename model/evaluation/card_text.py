"""The model card's text for the served ``convlstm`` (the Lagrangian ConvLSTM), assembled from
the checkpoint's metadata, the evaluation reports and the sections of `model.evaluation.card`.

Every number comes from a file a committed command wrote (`nowcast train`, `nowcast calibrate`,
`nowcast evaluate --split test --json`); nothing is typed in by hand.
"""

from __future__ import annotations

from typing import Any

from model.data.events import trained_cadences_min
from model.evaluation.card import (
    SOURCES,
    calibration_section,
    observed_events,
    other_networks,
    probabilistic_section,
    score_table,
    skill_target,
    target_uncertainty,
    training_runs,
)
from model.evaluation.card_attribution import (
    attribution_section,
    cross_validation_section,
    residual_gate_section,
)
from model.evaluation.card_independent import independent_check
from model.nets.lagrangian_net import BLUR_SIGMAS_CELLS


def _inflow_text(config: dict[str, Any]) -> str:
    if config.get("inflow", "zero") == "zero":
        return """A network that
  changes nothing gives the extrapolation nowcast (to float32 rounding, tested); it learns
  only what advection cannot."""
    return """Inflow "edge":
  where a lead's trajectory starts beyond the grid (rain the radar has not seen yet), the
  forecast reads the network's field at the nearest boundary cell instead of pysteps' 0, so
  rain at the upwind edge goes on flowing in and the network learns what flows in. A network
  that changes nothing gives the extrapolation nowcast wherever the trajectory stays in the
  grid and the last frame's edge beyond (tested); it learns only what advection cannot."""


def _gate_line(meta: dict[str, Any]) -> str:
    gate = meta.get("residual_gate") or {}
    if not gate.get("use"):
        return ""
    values = ", ".join(f"{v:g}" for v in gate["by_lead"])
    return f"""
- Served through a residual gate (`model.nets.residual_gate`): lead k keeps a_k of the
  network's change to the last frame, a = {values} (lead 1 to 15), selected on the
  cross-validation folds (see "The residual gate" below)."""


def _model_section(meta: dict[str, Any], config: dict[str, Any], params: int) -> str:
    cells, patch = config["frame_cells"], config["patch_size"]
    grid = cells // patch
    sigmas = ", ".join(f"{s:g}" for s in BLUR_SIGMAS_CELLS)
    return f"""- Method (after Ritvanen et al. 2023, L-CNN; Pavlik et al. 2024, LUPIN): the
  motion field of the {
        config["in_frames"]
    } inputs (pysteps Lucas-Kanade, the one `extrapolation` and `sprog`
  use, `model.advection.motion.motion_field`); the inputs moved along it to the issue time
  (Lagrangian coordinates); the network forecasts each lead's field at the issue time; each
  lead k is then moved k steps by pysteps' semi-Lagrangian displacements. {_inflow_text(config)}
- Network (`model.nets.lagrangian_net`): the encoder-forecaster of METHOD.md (ConvLSTM cells with
  peepholes, forecaster without input, states copied from the encoder) on {cells} x {cells}
  frames as {grid} x {grid} x {patch**2} patches, {len(config["hidden_channels"])} layers x
  {config["hidden_channels"]} hidden states, {config["kernel_size"]} x {config["kernel_size"]}
  kernels; a 1 x 1 head gives per lead a growth/decay map and the weights of {
        len(BLUR_SIGMAS_CELLS)
    }
  Gaussian blurs (sigma {sigmas} cells, averaging rain rates) of the last frame, upsampled
  bilinearly (no depth-to-space, so no checkerboard); {params:,} parameters.{_gate_line(meta)}
- Checkpoint: `model/checkpoints/convlstm.safetensors` (safetensors, no pickle), format
  {meta.get("format_version")}, weights written {
        meta.get("weights_created_utc") or meta.get("created_utc")
    }; normalisation {meta.get("normalisation", {}).get("version")} (grey = (dBZ + 10) / 80,
  Marshall-Palmer)."""


def _data_section(data: dict[str, Any]) -> str:
    events = data.get("events", [])
    rows = "\n".join(
        f"| {e['name']} | {e['site']} | {e['frames']} | {e['cadence_min']:g} "
        f"| {e['first']} .. {e['last']} |"
        for e in events
    )
    views = data.get("views", [])
    crops = len(views) - len(events)
    return f"""{SOURCES}

| event | site | frames | cadence (min) | valid times (UTC) |
| --- | --- | --- | --- | --- |
{rows}

Besides the centre crop the service sees, {crops} further 330 x 330 crops of the large grids
(placed about a crop apart, at least half covered by radar) are training sequences of their
own, through the same normalisation (`model.training.lagrangian_data`); a crop belongs to
its event's time blocks, so no crop of a validation or test frame reaches training. Training
windows with no cell at or above 0.5 mm/h (last input and targets) are left out. Cadences
are mixed as delivered (5, 6 and 10 minutes): a step is one radar cycle of the site."""


def _split_section(data: dict[str, Any]) -> str:
    by_split: dict[str, list[str]] = {}
    for b in data.get("blocks", []):
        by_split.setdefault(b["split"], []).append(f"{b['event']}@{b['first']}")
    return f"""Time blocks of {data.get("block_frames")} consecutive frames, stratified by rain
(`model.data.split`: the blocks ranked by their share of cells at or above 5, then 2, then
0.5 mm/h and dealt 4 : 1 : 1 like a snake draft), so that validation and test both hold rain at
every lead at 0.5, 2 and 5 mm/h; windows of 20 frames inside blocks only, so the three sets
never share a frame. This split is fixed: the test blocks below are asserted by
`tests/model/test_split_and_evaluate.py`. Windows: {data.get("windows")}.
- validation blocks: {", ".join(by_split.get("validation", []))}
- test blocks: {", ".join(by_split.get("test", []))}"""


def _mean_csi(pooled: dict[str, Any], threshold: str) -> str:
    values = [v or 0.0 for v in (pooled.get("csi") or {}).get(threshold, [])]
    return f"{sum(values) / len(values):.3f}" if values else "n/a"


def _loss_line(train: dict[str, Any], inflow: str) -> str:
    """What a run's loss was taken against, from its train config."""
    frame = (
        "the observed frames after moving each lead's output along the motion (a "
        "differentiable warp, LUPIN's way), "
        + (
            "every cell counting (with edge inflow the cells rain flows into score the "
            "output's edge)"
            if inflow == "edge"
            else "on the cells whose trajectory stayed in the grid"
        )
        if train.get("target_frame") == "eulerian"
        else "the targets moved into Lagrangian coordinates (L-CNN's way), on the cells whose "
        "trajectory stayed in the grid"
    )
    return (
        f"Loss `{train.get('loss')}` (`model.training.lagrangian_losses.build_loss`: soft CSI "
        f"at {train.get('soft_csi_mmh')} mm/h, grey MSE x 20, rain-rate MSE x "
        f"{train.get('rain_mse_weight')}) against {frame}; {train.get('optimizer')} lr "
        f"{train.get('learning_rate')}; batch {train.get('batch_size')}; seed "
        f"{train.get('seed')}; the 8 flips/rotations of the grid, one per window; fp32."
    )


def _count(value: object) -> str:
    """A count with thousands separators; a missing one as recorded ("None")."""
    return f"{value:,}" if isinstance(value, int) else str(value)


def _sitting_rows(sittings: list[dict[str, Any]], stage: str) -> list[str]:
    return [
        f"| {stage} | {i + 1} | {s.get('started_utc')} | {s.get('from_step')} -> "
        f"{s.get('to_step')} | {s.get('hardware')} |"
        for i, s in enumerate(sittings)
    ]


def _training_section(meta: dict[str, Any], inflow: str) -> str:
    train = meta.get("train_config", {})
    pooled = (meta.get("validation") or {}).get("scores") or {}
    earlier = meta.get("init_from") or {}
    run = meta.get("run_so_far") or {}
    sittings = run.get("sittings") or meta.get("sittings") or []
    so_far = (
        f" The run has since gone on to step {run['step']} ({run['samples_seen']:,} samples, "
        f"{run['minutes']} min) without a better validation score."
        if run
        else ""
    )
    rows = _sitting_rows(sittings, "2" if earlier else "1")
    stages = ""
    if earlier:
        first = earlier.get("run_so_far") or {}
        first_pooled = (earlier.get("validation") or {}).get("scores") or {}
        rows = _sitting_rows(first.get("sittings") or earlier.get("sittings") or [], "1") + rows
        stages = f"""
- Two stages. Stage 1 (inflow "zero", as pysteps): {
            _loss_line(earlier.get("train_config") or {}, "zero")
        } Its best weights (step {earlier.get("step")}, {_count(earlier.get("samples_seen"))}
  samples; validation CSI(0.5) {_mean_csi(first_pooled, "0.5")}, CSI(2)
  {_mean_csi(first_pooled, "2.0")} with pysteps' inflow) out of {first.get("step", "?")} steps
  ({_count(first.get("samples_seen"))} samples, {first.get("minutes", "?")} min) start stage 2,
  which is described below (`--init-from`)."""
    guarded = ", CSI(2) and CSI(5)" if (meta.get("selection_guards") or {}).get("csi") else ""
    before = (earlier.get("run_so_far") or {}).get("samples_seen", earlier.get("samples_seen", 0))
    total = before + (run.get("samples_seen") or meta.get("samples_seen") or 0)
    return f"""{stages}
- {"Stage 2: " if earlier else ""}{_loss_line(train, inflow)}
- Selection: every {train.get("eval_every_min")} min the validation windows are forecast as
  served (inflow "{inflow}") and the weights with the best mean of the 15-lead CSI at 0.5 and
  2 mm/h are kept, among those whose validation rain MSE{guarded} {"are" if guarded else "is"}
  no worse than the zero start's (= the extrapolation nowcast with the same inflow).
  Shipped: step {meta.get("step")} after
  {_count(meta.get("samples_seen"))} training samples ({
        meta.get("training_minutes")
    } min of training
  over {len(sittings)} sitting{"s" if len(sittings) != 1 else ""}{
        " of stage 2" if earlier else ""
    });
  validation CSI(0.5)
  {_mean_csi(pooled, "0.5")}, CSI(2) {_mean_csi(pooled, "2.0")}, CSI(5)
  {_mean_csi(pooled, "5.0")}.{so_far} Samples over all
  runs behind the shipped weights: {total:,}.
- Sittings (`nowcast train --resume` continues one exactly: weights, optimiser, random
  generators, step; the resumable state is committed beside the logs):

| stage | sitting | started (UTC) | steps | hardware |
| --- | --- | --- | --- | --- |
{chr(10).join(rows)}"""


LIMITS = """\
- Trained on two CPU cores on about 1,100 frames of 25 events: little data. Compare with the
  baselines above before relying on it, and read the per-lead tables, not only the means.
- The motion field is one Lucas-Kanade field held for 90 minutes (as `extrapolation`); the
  network does not correct the motion, only growth, decay and smoothing along it.
- Rain flowing in from beyond the radar's view is a guess: the smoothed rain at the upwind
  edge, carried in. It pays on average (see "Where the gain comes from"): by 90 minutes about
  half the observed rain cells came from beyond the grid, which pysteps' extrapolation leaves
  dry. It is wrong where a storm's edge lies just outside the view or the rain ends at the
  edge, and it draws smooth bands along the motion there (visible in the strips).
- The test split holds 55 windows from 5 events; its scores are dominated by the wettest
  (see the observed-cell counts): another split could move them by several hundredths.
- A lead is one radar cycle. The network, its residual gate and the probability calibrations
  learned one behaviour per lead at the training events' cadences; at another cadence each
  lead reads what was learned for another time ahead. Where the independent check's cadence
  lies outside them, its figures show what that costs. Set such a site's `default_method`
  (`NOWCAST_SITES`) to the method that verifies best there.
"""


def _verification_section(reports: list[dict[str, Any]]) -> str:
    """The score tables at 0.5, 2 and 5 mm/h and the observed events behind them."""
    return f"""Event: rain rate >= threshold; contingency tables pooled over all forecasts per lead.
Averages over the 15 leads at 0.5 mm/h:

{score_table(reports)}

At 2 mm/h:

{score_table(reports, "2.0")}

At 5 mm/h:

{score_table(reports, "5.0")}

{observed_events(reports)}"""


def render_card(
    meta: dict[str, Any],
    config: dict[str, Any],
    params: int,
    reports: list[dict[str, Any]],
    commands: list[str],
    trained_on: str | None = None,
    logs: dict[str, list[dict[str, Any]]] | None = None,
    others: list[dict[str, Any]] | None = None,
    attribution: dict[str, dict[str, Any]] | None = None,
    cross_validation: dict[str, Any] | None = None,
    independent: list[dict[str, Any]] | None = None,
) -> str:
    """The card's Markdown; ``logs``: training log name -> its rows; ``others``: the family's
    other networks (`model.evaluation.card.other_networks`). ``trained_on`` names the hardware when
    the checkpoint does not; ``attribution``: `model.experiments.smoothing_baselines`' result;
    ``cross_validation``: `model.experiments.fold_scores`' result; ``independent``: evaluation
    reports on radar never trained on nor chosen by (`model.evaluation.card_independent`)."""
    data = meta.get("training_data", {})
    hardware = meta.get("hardware") or trained_on or "not recorded"
    return f"""# Model card: the Lagrangian ConvLSTM (`convlstm`)

Generated by `nowcast model-card` from the checkpoint's metadata and the evaluation files;
do not edit by hand. Trained on {hardware}.

## Model
{_model_section(meta, config, params)}

## Training data
{_data_section(data)}

## Split
{_split_section(data)}

## Training
{_training_section(meta, config.get("inflow", "zero"))}

## Training runs
Every run's logs are in `model/training_logs/` (the Lagrangian ConvLSTM's: one row per
validation, by step; the Eulerian networks': one row per epoch, see
`docs/evaluation/training-choices.md`).

{training_runs(logs or {})}

## Calibration
{calibration_section(meta)}

## The family's other networks
`eulerian-convlstm` is the paper's network as published (kept by name for a GPU, with its
checkpoint); `saconvlstm` and `fclstm` are the alternatives of earlier runs. They were trained
on the earlier 24-event split (time blocks assigned in order, not by rain), whose training
blocks overlap today's test blocks: **their test scores below are not out of sample** and
only the baselines and `convlstm` compare fairly.

{other_networks(others or [])}

## Verification on the held-out test split
{_verification_section(reports)}

## Probabilistic nowcasts on the test split
Probabilities of exceedance from the `steps` ensemble (pysteps' STEPS, seeded) and from the
learned model (`convlstm-probability`: this network's forecast read as a neighbourhood
ensemble whose square widens by one cell per lead, the radius fitted on the training blocks,
`docs/evaluation/neighbourhood-fit.json`), scored on the same windows: Brier skill against
the sample climatology (BSS), ROC area, the CRPS of the ensemble's members (the members
themselves are not calibrated), each method's probabilities through its reliability
calibration (`model/calibration/`, fitted per lead and threshold on the training blocks by
`model.experiments.fit_probability_calibration`, shipped because it lowered the validation
split's Brier score, `docs/evaluation/probability-calibration-validation.json`, where
calibrations by an issue-time regime compete with the pooled one and the lowest Brier score
wins: `docs/evaluation/probability-regimes.md`; the form in use is named with each method
below),
and the reliability diagrams `docs/evaluation/test-csi-reliability.png` (observed frequency
against forecast probability per bin at 6, 30, 60 and 90 min, each point with its 95 % band:
the jackknife-t over events where the bin has cases from at least 3 events, else the bootstrap
over the forecasts; cases per bin underneath).

{probabilistic_section(reports)}

## Forecast strips
`docs/evaluation/strip-convlstm.png`, `strip-extrapolation.png` and
`strip-eulerian-convlstm.png`: one test window of the BOM Melbourne event (inputs, observed,
forecast at every lead; the command under Commands), for the eye: echoes should move with the
rain, grow or decay, and leave no ghost trail at their earlier places; the Lagrangian output
has no 2 x 2 checkerboard (no depth-to-space; tested on the network's output).

## Skill target
{skill_target(reports)}

{target_uncertainty(reports)}

### Where the gain comes from
{attribution_section(attribution)}

### Cross-validation over training-event folds
{cross_validation_section(cross_validation)}

### The residual gate, selected on the folds
{residual_gate_section(meta)}

## An independent check: radar no choice has seen
{independent_check(independent or [], list(trained_cadences_min(meta)))}

## Commands
```bash
{chr(10).join(commands)}
```

## Limits
{LIMITS}"""
