"""``nowcast evaluate`` and ``nowcast calibrate``: offline verification and calibration."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from model.cli.common import load_events, load_views_or_events
from model.paths import DEFAULT_CHECKPOINT

if TYPE_CHECKING:
    from ingest.normalize import NormParams
    from model.data.events import Event
    from model.methods import NowcastMethod
    from model.verification.scores import ScoreAccumulator

log = logging.getLogger(__name__)


def calibrate(
    folders: Annotated[
        list[Path],
        typer.Argument(
            help="The event folders the checkpoint was trained on.", exists=True, file_okay=False
        ),
    ],
    checkpoint: Annotated[Path, typer.Option("--checkpoint")] = DEFAULT_CHECKPOINT,
    quantiles: Annotated[int, typer.Option("--quantiles", min=2)] = 201,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Train-block CV folds.")] = 5,
    json_out: Annotated[Path | None, typer.Option("--json", help="The report as JSON.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only.")] = False,
) -> None:
    """Fit the per-lead probability matching on the train split; judge it on validation.

    The checkpoint is rewritten with the tables and the validation figures in its meta;
    ``use`` is set only if it raised the validation CSI at 0.5 mm/h (mean over the leads
    whose observations hold an event).
    """
    from datetime import UTC

    from ingest.ingestor import norm_params_for
    from ingest.settings import get_ingest_settings
    from model.data.split import split_windows
    from model.evaluation.calibration_fit import collect_forecasts, fit_and_judge
    from model.methods.convlstm import learned_method
    from model.nets.checkpoint import update_meta

    raw = learned_method(checkpoint, calibrated=False)
    data = raw.meta.get("training_data") or {}
    block_frames = data.get("block_frames")
    if not block_frames:
        raise typer.BadParameter(f"{checkpoint} does not record its training split")
    events = load_events(folders)
    c = raw.config
    windows, blocks = split_windows(events, c.in_frames, c.out_frames, block_frames)
    if [b.__dict__ for b in blocks] != data.get("blocks"):
        raise typer.BadParameter(
            "these events do not give the checkpoint's time blocks: its train split would not "
            "be the windows it was trained on"
        )
    norm = norm_params_for(get_ingest_settings(), events[0].site_id)
    typer.echo(
        f"forecasting {len(windows['train'])} train, {len(windows['validation'])} "
        "validation windows (raw network)"
    )
    train = collect_forecasts(raw, events, windows["train"], c.in_frames, c.out_frames)
    validation = collect_forecasts(raw, events, windows["validation"], c.in_frames, c.out_frames)
    tables, record = fit_and_judge(train, validation, block_frames, norm, quantiles, folds)
    record["fitted_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    judged, cross = record["validation"], record["train_block_cross_validation"]
    for name, part in (("validation", judged), ("train-block CV", cross)):
        typer.echo(
            f"{name}: mean CSI(0.5) raw {part['raw']['mean_csi']} over "
            f"{part['raw']['defined_leads']} defined leads, calibrated "
            f"{part['calibrated']['mean_csi']} over {part['calibrated']['defined_leads']}; "
            f"over the leads with observed events {part['leads_with_observed_events']}: "
            f"raw {part['mean_csi_raw']}, calibrated {part['mean_csi_calibrated']}"
        )
    typer.echo(f"use calibration: {record['use']} ({record['decision_rule']})")
    if json_out:
        json_out.write_text(json.dumps(record, indent=2))
        typer.echo(f"wrote {json_out}")
    if not dry_run:
        update_meta(checkpoint, {"calibration": {**tables.to_dict(), **record}})
        typer.echo(f"rewrote {checkpoint}")


def evaluate(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(help="Event folders (with --compare: evaluation JSON files).", exists=True),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="convlstm, eulerian-convlstm, saconvlstm, fclstm, persistence, "
            "extrapolation or sprog.",
        ),
    ] = "convlstm",
    json_out: Annotated[Path | None, typer.Option("--json", help="Scores as JSON.")] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Scores versus lead time (PNG).")
    ] = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="Draw the given evaluation JSONs together (--plot).")
    ] = False,
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="Learned methods; default: the method's shipped one."),
    ] = None,
    variant: Annotated[str, typer.Option("--variant", help="rover1, rover2, rover3")] = "rover1",
    calibrated: Annotated[
        bool,
        typer.Option(
            "--calibrated/--raw",
            help="Learned methods: apply the checkpoint's calibration, or not.",
        ),
    ] = True,
    split: Annotated[
        str,
        typer.Option(
            "--split", help="all, or only the train/validation/test blocks of the time-block split."
        ),
    ] = "all",
    block_frames: Annotated[int, typer.Option("--block-frames", min=20)] = 30,
    crops: Annotated[
        bool,
        typer.Option(
            "--crops",
            help="Score every 330 x 330 crop of a large grid as an event of its own (with "
            "--split all: for events never trained on).",
        ),
    ] = False,
    strip: Annotated[Path | None, typer.Option("--strip", help="Forecast strip PNG.")] = None,
    strip_time: Annotated[
        str | None, typer.Option("--strip-time", help="Issue time for --strip (ISO, UTC).")
    ] = None,
) -> None:
    """Verify a method offline on events: CSI/FAR/POD per lead, MSE, correlation (JSON, PNG)."""
    # long mostly by its option declarations; the steps are the functions below
    if compare:
        _compare(folders or [], plot)
        return
    if not folders:
        raise typer.BadParameter("give event folders, or --compare with JSON files")
    from ingest.ingestor import norm_params_for
    from ingest.settings import get_ingest_settings
    from model.evaluation.evaluate import (
        evaluate_ensemble,
        evaluate_method,
        evaluate_probabilities,
        observed_event_cells,
        report,
    )
    from model.methods import EnsembleMethod, ProbabilisticMethod, get_method, learned_names

    options: dict[str, object] = {}
    if method in learned_names() or method == "convlstm-probability":
        options.update(checkpoint=checkpoint, calibrated=calibrated)
    elif method == "extrapolation":
        options["variant"] = variant
    try:
        nowcaster = get_method(method, **options)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if crops and split != "all":
        raise typer.BadParameter(
            "--crops scores the crops of events never trained on: use it with --split all "
            "(training crops of the split's events share their blocks' frames)"
        )
    events = load_views_or_events(folders, crops)
    norm = norm_params_for(get_ingest_settings(), events[0].site_id)
    windows = None
    if split != "all":
        from model.data.split import split_windows

        by_split, _ = split_windows(events, 5, 15, block_frames)
        if split not in by_split:
            raise typer.BadParameter(f"--split must be all or one of {sorted(by_split)}")
        windows = by_split[split]
    from model.verification.probability_calibration import load_calibration

    probabilistic = None
    calibration = load_calibration(method) if calibrated else None
    if isinstance(nowcaster, EnsembleMethod):
        probabilistic = evaluate_ensemble(
            nowcaster, events, norm, windows=windows, calibration=calibration
        )
    elif isinstance(nowcaster, ProbabilisticMethod):
        probabilistic = evaluate_probabilities(
            nowcaster, events, norm, windows=windows, calibration=calibration
        )
    by_event: dict[str, ScoreAccumulator] = {}
    if probabilistic is not None:
        scores, count = probabilistic.deterministic, probabilistic.forecasts
        by_event = probabilistic.deterministic_by_event
    else:
        scores, count = evaluate_method(nowcaster, events, norm, windows=windows, by_event=by_event)
    label = f"{method}-raw" if method in learned_names() and not calibrated else method
    result = report(label, scores, count, events)
    result["counts_by_event"] = {name: acc.to_dict() for name, acc in sorted(by_event.items())}
    if probabilistic is not None:
        result["probabilistic"] = probabilistic.scores()
        result["ensemble_members"] = probabilistic.probabilistic.n_members
        result["probability_calibration"] = (
            calibration.fitted_on if calibration is not None else "none (raw probabilities)"
        )
    result["split"] = split if split == "all" else f"{split} (blocks of {block_frames} frames)"
    result["observed_event_cells_by_event"] = observed_event_cells(events, norm, windows=windows)
    method_meta = getattr(nowcaster, "meta", None)
    if method_meta is not None:
        result["calibration_applied"] = method_meta.get("calibration_applied", False)
        if "residual_gate_applied" in method_meta:
            result["residual_gate_applied"] = method_meta["residual_gate_applied"]
    _write_outputs(result, label, count, len(events), json_out, plot)
    if strip:
        _write_strip(nowcaster, label, events, norm, strip, strip_time)


def _compare(reports_json: list[Path], plot: Path | None) -> None:
    """Draw the evaluation JSONs together."""
    from model.evaluation.plots import plot_scores

    if plot is None:
        raise typer.BadParameter("--compare needs --plot")
    reports = [json.loads(p.read_text()) for p in reports_json]
    plot_scores(reports, plot)
    typer.echo(f"wrote {plot}")
    _echo_differences(reports)
    if any("probabilistic" in r for r in reports):
        from model.evaluation.plots import plot_reliability

        diagram = plot.with_name(f"{plot.stem}-reliability{plot.suffix}")
        plot_reliability(reports, diagram)
        typer.echo(f"wrote {diagram} (reliability diagrams)")


def _echo_differences(reports: list[dict[str, object]]) -> None:
    """Each report after the first minus the first, with the 95 % jackknife-t interval over
    the events (`model.verification.paired`), where both kept per-event counts."""
    from model.verification.paired import compare_reports

    first = reports[0]
    for other in reports[1:]:
        try:
            rows = compare_reports(other, first)
        except ValueError as exc:
            typer.echo(f"{other['method']} minus {first['method']}: not compared ({exc})")
            continue
        for row in rows:
            value = "n/a" if row["difference"] is None else f"{row['difference']:+.4f}"
            interval = (
                "no interval (fewer than 3 events, or undefined without one)"
                if row["low"] is None
                else f"95 % {row['low']:+.4f} to {row['high']:+.4f}"
            )
            typer.echo(
                f"{other['method']} minus {first['method']}, {row['score']}: {value}, "
                f"{interval} over {row['events']} events"
            )


def _write_outputs(
    result: dict[str, object],
    label: str,
    count: int,
    n_events: int,
    json_out: Path | None,
    plot: Path | None,
) -> None:
    """The summary line, then the JSON and the plot where asked."""
    from model.evaluation.plots import plot_scores

    csi_table = result["csi"]
    assert isinstance(csi_table, dict)
    csi = [c for c in csi_table["0.5"] if c is not None]
    typer.echo(
        f"{label}: {count} forecasts over {n_events} events; mean CSI(0.5) "
        f"{sum(csi) / len(csi) if csi else float('nan'):.3f}"
    )
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))
        typer.echo(f"wrote {json_out}")
    if plot:
        plot_scores([result], plot)
        typer.echo(f"wrote {plot}")


def _write_strip(
    nowcaster: NowcastMethod,
    method: str,
    events: list[Event],
    norm: NormParams,
    out_png: Path,
    strip_time: str | None,
) -> None:
    from model.evaluation.evaluate import forecast_windows
    from model.evaluation.plots import plot_strip
    from model.verification.scores import grey_to_mmh

    wanted = datetime.fromisoformat(strip_time.replace("Z", "+00:00")) if strip_time else None
    for event in events:
        for start in event.window_starts(5, 15):
            issue = event.times[start + 4]
            if wanted is None or issue == wanted:
                forecast = forecast_windows(nowcaster, event, [start], 5, 15)[0]
                plot_strip(
                    grey_to_mmh(event.grey[start : start + 5], norm),
                    grey_to_mmh(event.grey[start + 5 : start + 20], norm),
                    {method: grey_to_mmh(forecast, norm)},
                    [event.cadence_min * (k + 1) for k in range(15)],
                    f"{event.name} issued {issue:%Y-%m-%d %H:%MZ}",
                    out_png,
                )
                typer.echo(f"wrote {out_png}")
                return
    raise typer.BadParameter(f"no forecastable issue time {strip_time} in the events")
