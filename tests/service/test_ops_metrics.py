"""What the alert rules read, from a real worker on the embedded Redis (service.ops_metrics),
and counters that have a series from the start (service.metrics)."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest

from ingest.ingestor import Ingestor
from service.api.app import create_app
from service.inference import InferenceWorker
from service.methods_runner import MethodRunner
from service.ops_metrics import OpsCollector
from tests.service.helpers import FEED_START


def _exposition(app) -> str:
    registry = CollectorRegistry()
    for collector in app.state.collectors:
        registry.register(collector)
    return generate_latest(registry).decode()


def _value(text: str, series: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(series + " ")]
    return float(line.rsplit(" ", 1)[1])


def test_the_alerts_inputs_follow_the_workers_and_the_sites(settings, redis_conn, feed):
    app = create_app(settings, redis_conn)
    before = _exposition(app)
    # every reason and method has a series before the first event (rates and alerts need it)
    for series in (
        'nowcast_forecasts_refused_total{reason="behind"}',
        'nowcast_forecasts_issued_total{method="convlstm"}',
        'nowcast_frames_quarantined_total{reason="wrong_grid"}',
        'nowcast_workers_alive{kind="inference"}',
    ):
        assert _value(before, series) == 0.0, series
    ingestor = Ingestor(settings, redis_conn)
    for path in feed[:8]:
        ingestor.ingest_bytes(path.read_bytes(), str(path))
    worker = InferenceWorker(settings, redis_conn, MethodRunner(settings), consumer="ops")
    worker.heartbeat()
    while worker.process_once() > 0:
        pass
    text = _exposition(app)
    assert _value(text, 'nowcast_workers_alive{kind="inference"}') == 1.0
    assert _value(text, 'nowcast_site_cadence_seconds{site="synth-01"}') == 360.0
    assert _value(text, 'nowcast_forecast_lag_seconds{site="synth-01"}') == 0.0  # up to date
    assert _value(text, "nowcast_redis_used_memory_bytes") > 0
    assert _value(text, 'nowcast_forecasts_refused_total{reason="warming_up"}') == 4.0
    # a newer frame not yet forecast: the lag is one cadence
    ingestor.ingest_bytes(feed[8].read_bytes(), "late", emit_event=False)
    lag = _value(_exposition(app), 'nowcast_forecast_lag_seconds{site="synth-01"}')
    assert lag == timedelta(minutes=6).total_seconds()
    # skill over the last 6 h counts by the wall clock: this feed's hours are long past ...
    assert "nowcast_skill_csi_6h{" not in text
    # ... an hour after it, each method has its CSI per site, and the rain it rests on
    ops = OpsCollector(redis_conn, worker.window, worker.verification, settings.methods,
                       now=lambda: FEED_START + timedelta(hours=1))  # fmt: skip
    registry = CollectorRegistry()
    registry.register(ops)
    skill = generate_latest(registry).decode()
    for method in settings.methods:
        csi = _value(skill, f'nowcast_skill_csi_6h{{method="{method}",site="synth-01",'
                            'threshold_mmh="0.5"}')  # fmt: skip
        assert 0.0 <= csi <= 1.0, method
    assert _value(skill, 'nowcast_skill_observed_cells_6h{site="synth-01",threshold_mmh="0.5"}') > 0
