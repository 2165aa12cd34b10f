"""The inference worker on a real Redis with a real (small) ConvLSTM and real CF frames."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from core import keys
from ingest.ingestor import Ingestor
from model.verification.scores import ScoreAccumulator
from service.forecast import decode_forecast, encode_forecast
from service.inference import InferenceWorker
from service.methods_runner import MethodRunner
from tests.service.helpers import FEED_START


@pytest.fixture(scope="module")
def runner(small_checkpoint, tmp_path_factory):
    from tests.service.helpers import service_settings

    return MethodRunner(service_settings(tmp_path_factory.mktemp("r"), small_checkpoint))


def _ingest(settings, redis_conn, paths):
    ingestor = Ingestor(settings, redis_conn)
    for path in paths:
        result = ingestor.ingest_bytes(path.read_bytes(), str(path))
        assert result.outcome == "accepted", result


def _drain(worker):
    while worker.process_once() > 0:
        pass


def test_every_issue_time_with_five_frames_is_forecast_once_by_every_method(
    settings, redis_conn, runner, feed
):
    _ingest(settings, redis_conn, feed[:8])
    worker = InferenceWorker(settings, redis_conn, runner, consumer="w1")
    _drain(worker)

    for method in settings.methods:
        issued = worker.forecasts.issue_times("synth-01", method)
        # frames 0..7: issue times need 5 consecutive frames, so frames 4..7
        assert issued == [FEED_START + timedelta(minutes=6 * i) for i in range(4, 8)]
    counts = {k.decode(): int(v) for k, v in redis_conn.hgetall(keys.INFER_COUNTS).items()}
    assert counts["issued:convlstm"] == 4
    assert counts["refused:warming_up"] == 4

    latest = worker.forecasts.latest("synth-01", "convlstm")
    assert latest is not None
    assert latest.grey.shape == (15, 32, 32)
    assert latest.lead_minutes[0] == 6.0 and latest.lead_minutes[-1] == 90.0
    assert latest.model_version.startswith("convlstm-")
    persistence = worker.forecasts.latest("synth-01", "persistence")
    last_frame = worker.window.frame_at("synth-01", FEED_START + timedelta(minutes=42))
    np.testing.assert_allclose(persistence.grey[7], last_frame.grey, atol=2e-5)

    # a re-delivered event (same frame again) forecasts nothing new
    redis_conn.xadd(
        keys.EVENTS_STREAM,
        {"site": "synth-01", "valid_time": "2026-03-01T12:42:00Z", "norm_version": "x"},
    )
    _drain(worker)
    assert int(redis_conn.hget(keys.INFER_COUNTS, "issued:convlstm")) == 4

    # each stored issue time is announced once, for the publisher
    announced = redis_conn.xrange(keys.FORECAST_EVENTS)
    assert [fields[b"issue_time"] for _, fields in announced] == [
        f"2026-03-01T12:{m}:00Z".encode() for m in (24, 30, 36, 42)
    ]
    methods = b"convlstm,extrapolation,extrapolation-inflow,sprog,steps,persistence"
    assert announced[0][1][b"methods"] == methods


def test_verification_counts_when_the_verifying_frame_arrives_and_never_twice(
    settings, redis_conn, runner, feed
):
    _ingest(settings, redis_conn, feed[:5])
    worker = InferenceWorker(settings, redis_conn, runner, consumer="w1")
    _drain(worker)
    issue = FEED_START + timedelta(minutes=24)
    assert worker.verification.summed(["synth-01"], "persistence", 15).n_cells.sum() == 0

    _ingest(settings, redis_conn, feed[5:6])  # observation for lead 1 of the issue above
    _drain(worker)
    acc = worker.verification.summed(["synth-01"], "persistence", 15)
    assert acc.n_cells.tolist() == [32 * 32] + [0] * 14

    # the counts are exactly those of the scoring code on the same arrays
    forecast = worker.forecasts.get("synth-01", "persistence", issue)
    observed = worker.window.frame_at("synth-01", issue + timedelta(minutes=6))
    expected = ScoreAccumulator(1)
    expected.add(forecast.rain_mmh()[:1], worker.conversion.rain_mmh(observed.grey)[None])
    assert acc.hits[0].tolist() == expected.hits[0].tolist()
    assert acc.misses[0].tolist() == expected.misses[0].tolist()
    assert acc.sum_squared_error_mmh2[0] == pytest.approx(expected.sum_squared_error_mmh2[0])

    # verifying the same observation again adds nothing
    assert worker.verify_observation("synth-01", issue + timedelta(minutes=6)) == 0
    again = worker.verification.summed(["synth-01"], "persistence", 15)
    assert again.hits.tolist() == acc.hits.tolist()


def test_a_gap_refuses_the_issue_time_and_says_why(settings, redis_conn, runner, feed):
    _ingest(settings, redis_conn, [*feed[:5], *feed[6:8]])  # frame 5 missing
    worker = InferenceWorker(settings, redis_conn, runner, consumer="w1")
    _drain(worker)
    status = {
        k.decode(): v.decode() for k, v in redis_conn.hgetall(keys.infer_status("synth-01")).items()
    }
    assert status["refused_reason"] == "gap"
    assert "12:30Z" in status["refused_message"]
    issued = worker.forecasts.issue_times("synth-01", "convlstm")
    assert issued == [FEED_START + timedelta(minutes=24)]


def test_late_frames_verify_forecasts_made_after_them(settings, redis_conn, runner, feed):
    # all frames first, worker afterwards: forecasts are verified against frames already there
    _ingest(settings, redis_conn, feed[:8])
    worker = InferenceWorker(settings, redis_conn, runner, consumer="w1")
    _drain(worker)
    acc = worker.verification.summed(["synth-01"], "extrapolation", 15)
    # issue times 4..7 (frames up to 7): lead k verified for issues with issue + k <= 7
    assert acc.n_cells[:3].tolist() == [3 * 1024, 2 * 1024, 1 * 1024]
    assert acc.n_cells[3:].sum() == 0


def test_an_entry_left_pending_by_a_dead_worker_is_claimed_by_another(
    settings, redis_conn, runner, feed
):
    quick = settings.model_copy(update={"infer_claim_idle_ms": 1000})
    _ingest(quick, redis_conn, feed[:6])
    dead = InferenceWorker(quick, redis_conn, runner, consumer="dead")
    dead.ensure_group()
    # the dead worker read the events but never acknowledged them
    redis_conn.xreadgroup(keys.INFER_GROUP, "dead", {keys.EVENTS_STREAM: ">"}, count=100)
    assert redis_conn.xpending(keys.EVENTS_STREAM, keys.INFER_GROUP)["pending"] == 6

    alive = InferenceWorker(quick, redis_conn, runner, consumer="alive")
    assert alive.process_once() == 0  # not idle long enough yet
    import time

    time.sleep(1.1)
    _drain(alive)
    assert redis_conn.xpending(keys.EVENTS_STREAM, keys.INFER_GROUP)["pending"] == 0
    assert len(alive.forecasts.issue_times("synth-01", "convlstm")) == 2


def test_forecast_codec_round_trip_and_refuses_garbage(settings, redis_conn, runner, feed):
    _ingest(settings, redis_conn, feed[:5])
    worker = InferenceWorker(settings, redis_conn, runner, consumer="w1")
    _drain(worker)
    forecast = worker.forecasts.latest("synth-01", "convlstm")
    again = decode_forecast(encode_forecast(forecast))
    np.testing.assert_allclose(again.grey, forecast.grey, atol=1e-5)
    assert again.header() == forecast.header()
    blob = encode_forecast(forecast)
    for bad in (b"", b"NWC1", blob[:40], b"XXXX" + blob[4:], blob[:-10]):
        with pytest.raises(ValueError):
            decode_forecast(bad)


def _counts(redis_conn) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in redis_conn.hgetall(keys.INFER_COUNTS).items()}


def _status(redis_conn, site: str = "synth-01") -> dict[str, str]:
    raw = redis_conn.hgetall(keys.infer_status(site))
    return {k.decode(): v.decode() for k, v in raw.items()}


def test_a_worker_behind_forecasts_the_newest_and_says_how_far_behind_it_was(
    settings, redis_conn, runner, feed
):
    # 12 frames queued before the worker reads any (a backlog): 13:06 is the newest frame
    settings = settings.model_copy(update={"infer_max_behind_min": 30.0})
    _ingest(settings, redis_conn, feed[:12])
    worker = InferenceWorker(settings, redis_conn, runner, consumer="w1")
    _drain(worker)

    issued = worker.forecasts.issue_times("synth-01", "convlstm")
    newest = FEED_START + timedelta(minutes=66)
    assert issued[-1] == newest
    # within infer_max_behind_min (30 here) of the newest frame: forecast; older: behind
    assert issued == [FEED_START + timedelta(minutes=6 * i) for i in range(6, 12)]
    counts = _counts(redis_conn)
    assert counts["refused:behind"] == 2  # 12:24 and 12:30 had their 5 frames, but too late
    assert counts["refused:warming_up"] == 4  # the first 4 frames of the site, nothing later

    # a frame event that arrives long after its time is skipped too, with how far behind
    worker.handle([(b"0-1", {b"site": b"synth-01", b"valid_time": b"2026-03-01T12:24:00Z"})])
    status = _status(redis_conn)
    assert status["refused_reason"] == "behind"
    assert status["refused_message"].startswith("behind: 42 min older than the newest frame")


def test_issue_times_whose_frames_left_the_window_are_behind_not_warming_up(
    settings, redis_conn, runner, feed
):
    settings = settings.model_copy(update={"window_frames": 20, "infer_max_behind_min": 1e6})
    _ingest(settings, redis_conn, feed[:24])  # the window keeps frames 4..23
    worker = InferenceWorker(settings, redis_conn, runner, consumer="w1")
    _drain(worker)
    counts = _counts(redis_conn)
    assert counts.get("refused:warming_up", 0) == 0
    assert counts["refused:behind"] == 8  # issue times 0..7: frames or inputs rolled out
    issued = worker.forecasts.issue_times("synth-01", "persistence")
    assert issued == [FEED_START + timedelta(minutes=6 * i) for i in range(8, 24)]


def test_a_gap_between_two_events_is_one_refusal_not_one_per_issue_time(
    settings, redis_conn, runner, feed
):
    worker = InferenceWorker(settings, redis_conn, runner, consumer="w1")
    for path in [*feed[:5], *feed[10:16]]:  # frames 5..9 (12:30 to 12:54) missing
        _ingest(settings, redis_conn, [path])
        _drain(worker)  # in real time: one frame, then its nowcast
        if path == feed[13]:
            status = _status(redis_conn)
            assert status["refused_reason"] == "gap"
            assert status["refused_message"] == (
                "after the gap (missing 5 frames from 2026-03-01T12:30Z to "
                "2026-03-01T12:54Z): 4 of the 5 input frames since it"
            )
    counts = _counts(redis_conn)
    assert counts["refused:gap"] == 1
    assert counts["refused:warming_up"] == 4
    issued = worker.forecasts.issue_times("synth-01", "convlstm")
    assert issued == [FEED_START + timedelta(minutes=6 * i) for i in (4, 14, 15)]


def test_metrics_show_the_inference_backlog_and_its_age(settings, redis_conn, runner, feed):
    from datetime import UTC, datetime

    from service.metrics import RedisStateCollector

    _ingest(settings, redis_conn, feed[:3])
    now = datetime.now(UTC) + timedelta(seconds=90)
    collector = RedisStateCollector(redis_conn, (), now=lambda: now)

    def backlog() -> tuple[float, float]:
        samples = {
            m.name: m.samples[0].value
            for m in collector.collect()
            if m.name.startswith("nowcast_inference_backlog")
        }
        return (
            samples["nowcast_inference_backlog_events"],
            samples["nowcast_inference_backlog_oldest_age_seconds"],
        )

    events, age_s = backlog()
    assert events == 3
    assert 90 <= age_s < 150  # the oldest event was written moments before "now - 90 s"
    worker = InferenceWorker(settings, redis_conn, runner, consumer="w1")
    worker.ensure_group()
    redis_conn.xreadgroup(keys.INFER_GROUP, "w1", {keys.EVENTS_STREAM: ">"}, count=1)
    assert backlog()[0] == 3  # one delivered but not acknowledged, two not delivered
    _drain(worker)
    assert backlog() == (0.0, 0.0)


def test_a_site_at_a_cadence_the_network_never_trained_at_is_warned_once(
    settings, redis_conn, feed, tmp_path, caplog
):
    """The checkpoint records its training events' cadences; a site whose cadence lies outside
    them (here a 6-minute feed, a network trained at 10 and 15 minutes) is forecast as usual
    and warned of once, naming the remedy; the methods that were trained there are not."""
    from model.nets.checkpoint import load_checkpoint, save_checkpoint
    from tests.service.helpers import service_settings

    model, config, _ = load_checkpoint(settings.checkpoints["convlstm"])
    trained_slow = tmp_path / "slow.safetensors"
    events = [{"name": "a", "cadence_min": 10.0}, {"name": "b", "cadence_min": 15.0}]
    save_checkpoint(trained_slow, model, config, {"training_data": {"events": events}})
    slow = service_settings(tmp_path / "var", trained_slow, methods=("convlstm", "persistence"))
    runner = MethodRunner(slow)
    assert runner.trained_cadences_min == {"convlstm": (10.0, 15.0)}
    assert runner.untrained_cadence("elsewhere", 12.5) == []

    caplog.set_level("WARNING", logger="service.methods_runner")
    _ingest(slow, redis_conn, feed[:7])
    worker = InferenceWorker(slow, redis_conn, runner, consumer="slow")
    _drain(worker)
    assert len(worker.forecasts.issue_times("synth-01", "convlstm")) == 3  # still forecast
    warnings = [r.getMessage() for r in caplog.records if "outside" in r.getMessage()]
    assert warnings == [
        "site=synth-01 cadence 6 min lies outside the 10-15 min convlstm was trained at: its "
        "leads are steps it never learned; verify it against sprog and extrapolation, or set "
        "the site's default_method (NOWCAST_SITES)"
    ]


def test_a_stop_request_interrupts_a_run_between_methods_when_asked(settings):
    """The demo's fast stop (issue 33, finding 10): the methods left are not run; without
    ``should_stop`` a run always finishes (the warm stop of ``nowcast infer``)."""
    from service.methods_runner import RunInterrupted

    runner = MethodRunner(settings.model_copy(update={"methods": ("persistence", "extrapolation")}))
    inputs = np.zeros((1, 5, 32, 32), dtype=np.float32)
    asked: list[int] = []

    def stop_after_first() -> bool:
        asked.append(1)
        return len(asked) > 1

    with pytest.raises(RunInterrupted, match="before extrapolation"):
        runner.run(inputs, 3, should_stop=stop_after_first)
    assert [o.name for o in runner.run(inputs, 3)] == ["persistence", "extrapolation"]
