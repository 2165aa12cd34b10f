"""What the alert rules read, from a real worker on the embedded Redis (service.ops_metrics),
and counters that have a series from the start (service.metrics)."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest

from ingest.ingestor import Ingestor
from service.api.app import create_app
from service.inference import InferenceWorker
from service.methods_runner import MethodRunner
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
    # skill over the 6 h of valid time up to the site's newest frame: this feed's hours are
    # long past by the wall clock (issue 33, finding 8: a replay had no sample), yet each
    # method has its CSI per site, and the rain it rests on
    skill = _exposition(app)
    for method in settings.methods:
        csi = _value(skill, f'nowcast_skill_csi_6h{{method="{method}",site="synth-01",'
                            'threshold_mmh="0.5"}')  # fmt: skip
        assert 0.0 <= csi <= 1.0, method
    assert _value(skill, 'nowcast_skill_observed_cells_6h{site="synth-01",threshold_mmh="0.5"}') > 0


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def test_verification_is_per_site_with_leads_in_minutes_and_pools_through_its_counts(
    settings, redis_conn, feed, tmp_path
):
    """Two sites of different cadences (6 and 5 min): each site's series carry its own lead
    minutes and the lead step; the counts pool to the scores /v1/verification computes."""
    from ingest.cf_writer import write_synthetic_feed
    from service.api.app import create_app

    other = write_synthetic_feed(tmp_path / "five", 10, cadence_min=5.0, site_id="synth-05",
                                 start=FEED_START, shape=(96, 96), seed=5)  # fmt: skip
    ingestor = Ingestor(settings, redis_conn)
    for path in [*feed[:10], *other]:
        ingestor.ingest_bytes(path.read_bytes(), str(path))
    worker = InferenceWorker(settings, redis_conn, MethodRunner(settings), consumer="ops")
    while worker.process_once() > 0:
        pass
    app = create_app(settings, redis_conn)
    text = _exposition(app)

    # per site, its leads pooled: the site's own counts ...
    by_site: dict[tuple[str, str, str], dict[str, float]] = {}
    for labels, value in _samples(text, "nowcast_site_verification_cells"):
        key = (labels["site"], labels["method"], labels["threshold_mmh"])
        by_site.setdefault(key, {})[labels["outcome"]] = value
    assert {site for site, _, _ in by_site} == {"synth-01", "synth-05"}
    assert {method for _, method, _ in by_site} <= set(settings.methods)
    # ... per lead step, every site pooled (no site label: the series do not multiply)
    cells: dict[tuple[str, ...], dict[str, float]] = {}
    for labels, value in _samples(text, "nowcast_verification_cells"):
        assert "site" not in labels
        key = (labels["method"], labels["lead_step"], labels["threshold_mmh"])
        cells.setdefault(key, {})[labels["outcome"]] = value
    for (method, threshold), outcome in [(("persistence", "0.5"), "hit")]:
        pooled_leads = sum(
            n[outcome] for (m, _, t), n in cells.items() if (m, t) == (method, threshold)
        )
        per_site = sum(
            n[outcome] for (_, m, t), n in by_site.items() if (m, t) == (method, threshold)
        )
        assert pooled_leads == per_site > 0  # the same counts, summed two ways
    assert not _samples(text, "nowcast_verification_csi")  # scores are PromQL's to derive
    # ... and the counts summed over the sites give the pooled scores of /v1/verification
    import httpx

    from tests.service.live_server import serving

    with serving(app) as base_url:
        body = httpx.get(f"{base_url}/v1/verification", params={"method": "persistence"}).json()
    assert body["lead_minutes"] is None  # the sites' cadences differ
    pooled = body["methods"]["persistence"]
    hits = {step: cells[("persistence", str(step), "0.5")]["hit"] for step in range(1, 16)}
    assert hits[1] > 0
    assert [hits[step] for step in range(1, 16)] == pooled["hits"]["0.5"]
