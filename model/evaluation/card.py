"""The model card (``model/MODEL_CARD.md``), written from the checkpoint and evaluation JSONs.

Every number in the card comes from a file a committed command wrote: the checkpoint's own
metadata (`nowcast train`) and `nowcast evaluate ... --split test --json` outputs.
"""

from __future__ import annotations

from typing import Any

from model.nets.architectures import get_architecture

SOURCES = (
    "Radar frames: Bureau of Meteorology (Australia) Rainfields 3 accumulations of the Melbourne "
    "and Mt Stapylton radars and the Finnish Meteorological Institute composite (both from the "
    "pysteps example data collection), the KNMI (Netherlands) reflectivity composite "
    "(KNMI open data) and the Italian Civil Protection Department's (DPC) national mosaic "
    "(column maximum reflectivity); converted to CF-NetCDF, read from ../shared/data/radar."
)


def _mean(values: list[float | None]) -> str:
    defined = [v for v in values if v is not None]
    return f"{sum(defined) / len(defined):.3f}" if defined else "n/a"


def format_cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def describe_initialisation(previous: dict[str, Any] | None) -> str:
    """Where a run's weights started, for the card: random, or an earlier run's best weights
    (and the synthetic corpus when that run was pre-trained on it)."""
    if not previous:
        return "random initialisation"
    cfg = previous.get("train_config") or {}
    return (
        f"an earlier run's best weights (epoch {previous.get('epoch')}, "
        f"{previous.get('samples_seen')} samples, selected by validation "
        f"{cfg.get('select_by', 'loss')}, {cfg.get('max_minutes')} min budget"
        f"{_pretraining_data(previous)})"
    )


def _pretraining_data(previous: dict[str, Any]) -> str:
    """', pre-trained on N synthetic events ...' when the earlier run trained on the corpus."""
    from model.training.pretraining import SITE_PREFIX

    data = previous.get("training_data") or {}
    events = [str(name) for name in data.get("events") or []]
    synthetic = [name for name in events if name.rsplit("/", 1)[-1].startswith(SITE_PREFIX)]
    if not synthetic:
        return ""
    windows = (data.get("windows") or {}).get("train")
    real = len(events) - len(synthetic)
    return (
        f", pre-trained on {len(synthetic)} synthetic events of `nowcast synth-corpus`"
        f"{f' and {real} real ones' if real else ''} ({windows} training windows)"
    )


def score_table(reports: list[dict[str, Any]], threshold: str = "0.5") -> str:
    """Markdown: 15-lead averages per method, then CSI/FAR/POD by lead."""
    lines = [
        "| method | forecasts | CSI | FAR | POD | rain MSE | correlation |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in reports:
        lines.append(
            f"| {r['method']} | {r['forecasts']} | {_mean(r['csi'][threshold])} | "
            f"{_mean(r['far'][threshold])} | {_mean(r['pod'][threshold])} | "
            f"{_mean(r['rain_mse'])} | {_mean(r['correlation'])} |"
        )
    lines += ["", f"By lead time, at >= {threshold} mm/h (CSI / FAR / POD):", ""]
    header = "| lead (min) | " + " | ".join(r["method"] for r in reports) + " |"
    lines += [header, "| --- |" + " --- |" * len(reports)]
    for k, lead in enumerate(reports[0]["lead_minutes"]):
        cells = [
            f"{format_cell(r['csi'][threshold][k])} / {format_cell(r['far'][threshold][k])} / "
            f"{format_cell(r['pod'][threshold][k])}"
            for r in reports
        ]
        lines.append(f"| {lead:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mean_defined(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None


def skill_target(reports: list[dict[str, Any]], threshold: str = "0.5") -> str:
    """The skill issue's target, judged on the test reports: convlstm's mean CSI >= 1.10 x
    extrapolation's and >= sprog's (when evaluated), higher than persistence's at every lead;
    CSI at 2 and 5 mm/h and rain MSE no worse than extrapolation's (when reported)."""
    by_method = {r["method"]: r for r in reports}
    if not {"convlstm", "extrapolation", "persistence"} <= set(by_method):
        return "Not assessed: the convlstm, extrapolation and persistence evaluations are needed."
    model, extrapolation, persistence = (
        by_method[m]["csi"][threshold] for m in ("convlstm", "extrapolation", "persistence")
    )
    c, e = mean_defined(model), mean_defined(extrapolation)
    if c is None or e is None or e == 0:
        return "Not assessed: CSI undefined."
    leads = by_method["convlstm"]["lead_minutes"]
    behind = [
        f"{lead:g}"
        for lead, mine, theirs in zip(leads, model, persistence, strict=True)
        if mine is None or (theirs is not None and mine <= theirs)
    ]
    checks = [c >= 1.10 * e, not behind]
    sprog = by_method.get("sprog")
    s = mean_defined(sprog["csi"][threshold]) if sprog else None
    against_sprog = ""
    if s is not None:
        checks.append(c >= s)
        against_sprog = f"; S-PROG {s:.3f}, so it is {'at or above' if c >= s else 'below'} S-PROG"
    others = []
    for other in ("2.0", "5.0"):
        mine_o = mean_defined(by_method["convlstm"]["csi"].get(other, []))
        theirs_o = mean_defined(by_method["extrapolation"]["csi"].get(other, []))
        if mine_o is not None and theirs_o is not None:
            checks.append(mine_o >= theirs_o)
            others.append(f"CSI({float(other):g}) {mine_o:.3f} against {theirs_o:.3f}")
    mse, mse_e = (
        mean_defined(by_method[m].get("rain_mse", [])) for m in ("convlstm", "extrapolation")
    )
    if mse is not None and mse_e is not None:
        checks.append(mse <= mse_e)
        others.append(f"rain MSE {mse:.3f} against {mse_e:.3f}")
    against_persistence = (
        "beats persistence at every lead"
        if not behind
        else f"does not beat persistence at {len(behind)} of {len(leads)} leads "
        f"({', '.join(behind)} min)"
    )
    return (
        f"**{'Met' if all(checks) else 'Not met'}.** Target: convlstm mean CSI(>= {threshold} "
        "mm/h) >= 1.10 x extrapolation's and >= S-PROG's, higher than persistence's at every "
        "lead; CSI(2), CSI(5) and rain MSE no worse than extrapolation's. convlstm "
        f"{c:.3f} = {c / e:.2f} x extrapolation ({e:.3f}; the target is {1.10 * e:.3f})"
        f"{against_sprog}; it {against_persistence}"
        + (f"; against extrapolation: {', '.join(others)}" if others else "")
        + "."
    )


def target_uncertainty(reports: list[dict[str, Any]], split: str = "test") -> str:
    """How sure the skill target's comparisons are: convlstm minus extrapolation (and minus
    S-PROG at 0.5 mm/h) on the same ``split``'s windows, each with its 95 % jackknife-t interval
    over the reports' events (`model.verification.paired`), and how many events hold the rain
    each score rests on; from the reports' per-event counts."""
    from model.verification.paired import compare_reports, counts_by_event, observed_cells_by_event

    by_name = {r["method"]: r for r in reports}
    mine = counts_by_event(by_name.get("convlstm", {}))
    if mine is None or counts_by_event(by_name.get("extrapolation", {})) is None:
        return f"Not assessed: the {split} reports lack per-event counts (evaluate them again)."
    comparisons = [
        ("extrapolation", compare_reports(by_name["convlstm"], by_name["extrapolation"]))
    ]
    if counts_by_event(by_name.get("sprog", {})) is not None:
        comparisons.append(("sprog", compare_reports(by_name["convlstm"], by_name["sprog"])[:1]))
    rows: list[str] = []
    shares: list[tuple[str, float, str]] = []  # (event, its share of the cells, text)
    for other, differences in comparisons:
        for row in differences:
            threshold = row["threshold"]
            cells = None if threshold is None else observed_cells_by_event(mine, threshold)
            wet = "all" if cells is None else _wet_events(cells)
            if row["low"] is not None:
                interval = f"{row['low']:+.3f} to {row['high']:+.3f}"
            else:
                interval = "n/a (undefined without one of the events)"
            rows.append(
                f"| {row['score']} | `{other}` | {_signed(row['difference'])} | {interval} "
                f"| {wet} |"
            )
    for threshold in ("0.5", "2", "5"):
        cells = observed_cells_by_event(mine, str(float(threshold)))
        total = sum(cells.values())
        if total:
            name, most = max(cells.items(), key=lambda item: item[1])
            shares.append((name, most / total, f"`{name}` {most / total:.0%} at {threshold} mm/h"))
    where = ""
    if shares:
        where = (
            " The event holding most of the observed rain cells (over all leads): "
            + ", ".join(text for _, _, text in shares)
            + "."
        )
        if (
            len({name for name, _, _ in shares}) == 1
            and min(share for _, share, _ in shares) >= 0.5
        ):
            where += (
                " So the verdict rests mostly on one event, and no interval over events can "
                "be narrow."
            )
    return (
        "How sure these comparisons are: convlstm minus the other method on the same "
        f"{split} windows, with the 95 % interval of the delete-one-event jackknife-t over the "
        f"{len(mine)} {split} events (the windows of one event are not independent; "
        "`model.verification.paired`). An interval that straddles 0 means these events cannot "
        f"tell the two apart.{where}\n\n"
        "| score | against | convlstm minus it | 95 % interval | events with rain at the "
        "threshold |\n| --- | --- | --- | --- | --- |\n" + "\n".join(rows)
    )


def _wet_events(cells: dict[str, int]) -> str:
    if not cells:
        return "n/a"
    return f"{sum(1 for n in cells.values() if n > 0)} of {len(cells)}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def observed_events(reports: list[dict[str, Any]], threshold: str = "0.5") -> str:
    """Where the test split's observed events are (from the evaluation's counts)."""
    for r in reports:
        by_event = r.get("observed_event_cells_by_event", {}).get(threshold)
        if by_event:
            wet = {name: n for name, n in by_event.items() if n}
            total = sum(by_event.values())
            names = ", ".join(f"{name} ({n:,} cells)" for name, n in wet.items())
            return (
                f"Observed cells >= {threshold} mm/h over all test windows and leads: {total:,}, "
                f"in {len(wet)} of the {len(by_event)} events with test windows: {names or 'none'}."
            )
    return ""


def training_runs(logs: dict[str, list[dict[str, Any]]]) -> str:
    """A table of the training logs (one row per run) in `model/training_logs/`: the epoch
    logs of the Eulerian networks and the evaluation logs of the Lagrangian ConvLSTM's runs."""
    if not logs:
        return "No training logs were given."
    lines = [
        "| log | evaluations | best validation loss (epoch) | best validation CSI(0.5) "
        "(epoch or step) |",
        "| --- | --- | --- | --- |",
    ]
    for name, rows in logs.items():
        if rows and "step" in rows[0]:
            by_score = max(rows, key=lambda r: r["validation_score"])
            lines.append(
                f"| `{name}` | {len(rows)} | (selected by CSI) "
                f"| {format_cell(by_score['validation_csi_0_5'])} (step {by_score['step']}) |"
            )
            continue
        by_loss = min(rows, key=lambda r: r["validation_loss"])
        by_csi = max(rows, key=lambda r: r.get("validation_csi_0_5") or 0.0)
        lines.append(
            f"| `{name}` | {len(rows)} | {by_loss['validation_loss']:.4f} ({by_loss['epoch']}) "
            f"| {format_cell(by_csi.get('validation_csi_0_5'))} ({by_csi['epoch']}) |"
        )
    return "\n".join(lines)


def calibration_section(meta: dict[str, Any]) -> str:
    """What the calibration is, how it did on validation, whether it is in use."""
    cal = meta.get("calibration")
    if not cal:
        return "None: the forecasts are the network's raw output (`nowcast calibrate` not run)."
    val, cross = cal["validation"], cal["train_block_cross_validation"]
    judged_on = _JUDGED_ON.get(cal.get("judged_on"), "the validation split")

    def row(name: str, part: dict[str, Any]) -> str:
        raw, fitted = part["raw"], part["calibrated"]
        return (
            f"| {name} | {part['windows']} | {part['observed_event_cells']:,} "
            f"| {format_cell(raw['mean_csi'])} ({raw['defined_leads']}) "
            f"| {format_cell(fitted['mean_csi'])} ({fitted['defined_leads']}) "
            f"| {part['leads_with_observed_events'] or 'none'} "
            f"| {format_cell(part['mean_csi_raw'])} | {format_cell(part['mean_csi_calibrated'])} "
            f"| {format_cell(part.get('mean_rain_mse_raw'))} "
            f"| {format_cell(part.get('mean_rain_mse_calibrated'))} |"
        )

    return f"""Per-lead probability matching (quantile mapping) of the network's grey levels onto
the observed ones: for each lead, {cal["n_quantiles"]} quantile pairs (forecast grey,
observed grey), fitted on the raw forecasts of the {cal["fitted_on"]} only; applied by linear
interpolation (monotone, 0 -> 0, 1 -> 1), then capped at the brightest cell of the
forecast's own input frames (`cap_at_inputs`: the tables' upper tail, learnt on convective
training rain, must not turn a light event's blur into heavy rain). Stored in the
checkpoint's metadata; fitted {cal.get("fitted_utc")} by `nowcast calibrate`.
**In use: {"yes" if cal["use"] else "no"}** (rule: {cal["decision_rule"]}; judged on: {judged_on}).
`get_method("convlstm", calibrated=False)` or `nowcast evaluate --raw` gives the raw output;
evaluation JSONs say `calibration_applied`.

| windows judged | windows | observed cells >= 0.5 mm/h | raw mean CSI (defined leads) \
| calibrated mean CSI (defined leads) | leads with observed events | raw CSI over them \
| calibrated CSI over them | raw rain MSE | calibrated rain MSE |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{row("validation split", val)}
{row(f"train blocks, {cross['folds']}-fold CV", cross)}

At a lead with no observed event CSI is 0 as soon as anything is forecast (calibrated) or
undefined and skipped (raw), so the plain means over "defined leads" compare unlike sets of
leads; the rule uses the leads with observed events. A validation split whose rain ends after
a few leads cannot judge a calibration meant for the long leads (where the raw forecast has
blurred below the threshold), so the rule then rests on the cross-validation over training
blocks, which judges the tables out of sample (fitted on the other folds) although the network
saw those windows in training."""


_JUDGED_ON = {
    "validation": "the validation split",
    "train_block_cross_validation": "the cross-validation over training blocks (the validation "
    "split lacks observed events at some leads)",
}


def _validation_caveat(meta: dict[str, Any]) -> str:
    validation = (meta.get("calibration") or {}).get("validation")
    if not validation:
        return ""
    return (
        f"\nThe validation split holds {validation['observed_event_cells']:,} observed cells "
        f">= 0.5 mm/h over its {validation['windows']} windows, at leads "
        f"{validation['leads_with_observed_events'] or 'none'} only: a selection by validation "
        "CSI rests on those few cells."
    )


def _report_notes(reports: list[dict[str, Any]]) -> str:
    notes = [f"Lead times: {reports[0].get('lead_minutes_note', 'as delivered')}."]
    for r in reports:
        if "calibration_applied" in r:
            applied = "applied" if r["calibration_applied"] else "not applied"
            notes.append(f"`{r['method']}`: calibration {applied}.")
        if "residual_gate_applied" in r:
            gate = "applied" if r["residual_gate_applied"] else "not applied"
            notes.append(f"`{r['method']}`: residual gate {gate}.")
    return " ".join(notes) + "\n"


def other_networks(others: list[dict[str, Any]]) -> str:
    """A table of the family's other trained networks (``eulerian-convlstm``, ``saconvlstm``,
    ``fclstm``).

    Each entry: ``name``, ``config`` (dict), ``params``, ``meta`` (the checkpoint's).
    """
    if not others:
        return "None trained yet."
    lines = [
        "| network | architecture | parameters | started from | training | best epoch "
        "(samples) | validation cross-entropy |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for other in others:
        config, meta = other["config"], other["meta"]
        train = meta.get("train_config", {})
        cells = config["frame_cells"]
        shape = get_architecture(config["architecture"]).describe(config)
        started = meta.get("initialised_from")
        origin = "random initialisation"
        if started and started.get("weights_transferred"):
            origin = (
                f"the ConvLSTM checkpoint's {len(started['weights_transferred'])} tensors "
                "that fit (cells and head); the attention memory from scratch"
            )
        elif started:
            origin = describe_initialisation(started)
            earlier = (started.get("train_config") or {}).get("init_from")
            if earlier:
                origin += f", which itself started from `{earlier}`"
        training = (
            f"{train.get('max_minutes')} min budget, "
            f"{'bf16' if train.get('bf16') else 'fp32'}, selected by validation "
            f"{train.get('select_by', 'loss')}"
        )
        if train.get("crop_cells"):
            crop = train["crop_cells"]
            training += f", on random {crop} x {crop}-cell crops of the {cells} x {cells} frames"
        loss = (meta.get("validation") or {}).get("loss")
        lines.append(
            f"| `{other['name']}` | {shape} | {other['params']:,} | {origin} | {training} "
            f"| {meta.get('epoch')} ({meta.get('samples_seen')}) | {format_cell(loss)} |"
        )
    return "\n".join(lines)


def reliability_summary(
    scores: dict[str, Any], threshold: str, band_key: str = "reliability_band"
) -> tuple[int, int, float]:
    """(bins whose forecast probability lies in the 95 % band of their observed frequency,
    bins judged, the cases-weighted mean |observed frequency - forecast probability|) over all
    leads at ``threshold``; judged: the bins with >= 10 cases (and, for the bootstrap over
    events, a band wider than a point: cases from one event alone say nothing of the spread
    between events).

    The band is ``band_key``'s (`nowcast evaluate`: ``reliability_band``, the bootstrap over
    forecasts; ``reliability_band_events``, the bootstrap over events;
    ``reliability_band_events_t``, the jackknife-t over events) where the report has it, else the
    binomial band of independent cells (`model.evaluation.plots.reliability_band`), which
    neighbouring cells make far too narrow.
    """
    from model.evaluation.plots import reliability_band

    bands = scores.get(band_key, {}).get(threshold)
    inside = total = 0
    gap = cases = 0.0
    for k, points in enumerate(scores["reliability"][threshold]):
        for i, (p, o, n) in enumerate(
            zip(
                points["forecast_probability"],
                points["observed_frequency"],
                points["count"],
                strict=True,
            )
        ):
            if p is None or o is None:
                continue
            gap += n * abs(o - p)
            cases += n
            if bands is None:
                total += 1
                inside += abs(o - p) <= reliability_band(p, n)
                continue
            low, high = bands[k]["low"][i], bands[k]["high"][i]
            if low is None or high is None or ("events" in band_key and high - low < 1e-9):
                continue
            total += 1
            inside += low <= p <= high
    return inside, total, gap / cases if cases else float("nan")


BAND_MISS_RATE = 0.05
"""How often a reliable forecast's judged bin lies outside its 95 % band: 1 - its level."""


def bins_allowed_outside(judged: int, level: float = 0.05) -> int:
    """The most of ``judged`` bins that may lie outside their 95 % bands before the forecast is
    called unreliable: the (1 - ``level``) quantile of Binomial(judged, `BAND_MISS_RATE`).

    Each band misses a reliable forecast's bin 5 % of the time, so a reliable forecast judged on
    65 bins has 3 or 4 outside on average, and "at least 95 % inside" would call it unreliable
    4 times in 10, with 15 bins more than half the time (tests/model/test_probabilistic.py
    simulates it with the jackknife-t band over 5 events). This count test
    rejects a reliable forecast at most ``level`` of the time where the bins miss independently;
    bins of one method share events and leads, so their misses cluster, and the test is then
    stricter than its level.
    """
    from scipy.stats import binom

    return int(binom.ppf(1.0 - level, judged, BAND_MISS_RATE)) if judged else 0


JUDGED_BAND = "reliability_band_events_t"
"""The band the test judges by: the jackknife-t over events, which holds its 95 % with the
test split's 5 events (`model.verification.probabilistic.reliability_band_jackknife`), in bins
with cases from at least 3 events (`model.evaluation.evaluate.JUDGED_MIN_EVENTS`); reports
from before it have only the bootstrap over events, which is judged instead."""


def reliability_text(scores: dict[str, Any]) -> tuple[str, bool]:
    """The card's sentence on reliability at 0.5 and 2 mm/h, and whether it passes."""
    parts, passes = [], True
    events = scores.get("reliability_events")
    for threshold in ("0.5", "2.0"):
        inside, total, gap = reliability_summary(scores, threshold)
        text = (
            f"at {threshold} mm/h the observed frequency is {gap:.3f} from the forecast "
            f"probability on average (cases-weighted); the forecast probability lies within "
            f"the 95 % band over forecasts in {inside} of {total} bins with >= 10 cases"
        )
        if "reliability_band_events" in scores:
            inside, total, _ = reliability_summary(scores, threshold, "reliability_band_events")
            text += f", within the bootstrap band over the {events} events in {inside} of {total}"
        if JUDGED_BAND in scores:
            inside, total, _ = reliability_summary(scores, threshold, JUDGED_BAND)
            text += f", within the jackknife-t band over them in {inside} of {total} (judged)"
            text += f" (at most {bins_allowed_outside(total)} may lie outside)"
        passes = passes and total > 0 and total - inside <= bins_allowed_outside(total)
        parts.append(text)
    return "; ".join(parts), passes


def brier_skill_positive(scores: dict[str, Any]) -> dict[str, bool]:
    """Whether the Brier skill is positive at every lead, at 0.5 and at 2 mm/h (the
    probability issue's criterion), from a report's ``probabilistic`` scores."""
    return {
        t: all(v is not None and v > 0 for v in scores["brier_skill"][t]) for t in ("0.5", "2.0")
    }


def probabilistic_section(reports: list[dict[str, Any]]) -> str:
    """Per lead Brier skill and ROC area at 0.5 and 2 mm/h, CRPS, and how reliable, for the
    reports with probabilities."""
    chosen = [r for r in reports if "probabilistic" in r]
    if not chosen:
        return "No probabilistic method was evaluated."
    parts = []
    for rep in chosen:
        scores = rep["probabilistic"]
        header = "| lead (min) | BSS 0.5 | BSS 2 | ROC area 0.5 | ROC area 2 | CRPS (mm/h) |"
        rows = [header, "| --- | --- | --- | --- | --- | --- |"]
        crps = scores.get("crps") or [None] * len(rep["lead_minutes"])
        for k, minutes in enumerate(rep["lead_minutes"]):
            cells = [
                scores["brier_skill"]["0.5"][k],
                scores["brier_skill"]["2.0"][k],
                scores["roc_area"]["0.5"][k],
                scores["roc_area"]["2.0"][k],
                crps[k],
            ]
            rows.append(f"| {minutes:g} | " + " | ".join(format_cell(v) for v in cells) + " |")
        positive = brier_skill_positive(scores)
        reliability, consistent = reliability_text(scores)
        members = rep.get("ensemble_members")
        source = f"{members} members" if members else "neighbourhood probabilities"
        calibration = rep.get("probability_calibration", "none (raw probabilities)")
        if not calibration.startswith("none"):
            calibration = f"probabilities calibrated on the {calibration}"
        parts.append(
            f"`{rep['method']}` ({source}, {rep['forecasts']} forecasts; {calibration}):\n\n"
            + "\n".join(rows)
            + "\n\n"
            f"Brier skill positive at every lead: {positive['0.5']} at 0.5 mm/h, "
            f"{positive['2.0']} at 2 mm/h. Reliability: {reliability}. The bands: bootstraps "
            "resampling whole forecasts (neighbouring cells of one forecast are not "
            "independent) and whole events (consecutive windows of one event share all but "
            "one frame, so they are not independent either), and the delete-one-event "
            "jackknife with Student's t, which holds its 95 % with as few events as the test "
            "split has, where the bootstrap over 5 events holds about 84 % (simulated in "
            "tests/model/test_probabilistic.py). Judged over events: the bins with cases from "
            "more than one event (the bootstrap) and from at least 3 (the jackknife-t: with 2 "
            "its band is nearly always [0, 1]); where events disagree the band is wide, so with "
            "5 test events the test can miss a modest miscalibration, and the cases-weighted "
            "distance from the diagonal says more. The test: no more judged bins outside the "
            "jackknife-t band over events than a reliable forecast leaves outside 95 % of the "
            "time (the 95th percentile of Binomial(judged bins, 0.05); a reliable forecast has "
            "5 % of its bins outside on average, so requiring 95 % inside would reject it "
            "often: 4 times in 10 with 65 judged bins, more than half the time with 15). "
            + (
                "**Reliable by this test.**"
                if consistent
                else "**Not reliable by this test**: too many bins lie outside their band."
            )
        )
    return "\n\n".join(parts)
