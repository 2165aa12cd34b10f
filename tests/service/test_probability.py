"""The probability product of `steps` end to end: the worker stores exceedance probabilities
with the forecast, verifies them live exactly once (checked against pysteps' functions on the
same forecasts), and the API serves them as JSON, CF-NetCDF, PNG and GeoJSON."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import httpx
import netCDF4
import numpy as np
import pytest
from PIL import Image
from pysteps.verification import probscores

from ingest.cf_writer import SYNTH_GRID_MAPPING, write_synthetic_feed
from ingest.ingestor import Ingestor
from service.api.app import create_app
from service.forecast import decode_forecast, encode_forecast
from service.inference import InferenceWorker
from service.methods_runner import MethodRunner
from tests.service.helpers import FEED_START, service_settings
from tests.service.live_server import serving
from tests.service.publish_helpers import SECRET, webhook

SITE = "geo-01"
METHODS = ("convlstm", "steps", "convlstm-probability", "extrapolation")


@pytest.fixture
def probabilistic(tmp_path, redis_conn, small_checkpoint):
    settings = service_settings(
        tmp_path / "var", small_checkpoint, methods=METHODS, steps_members=10
    )
    frames = write_synthetic_feed(
        tmp_path / "feed", 12, site_id=SITE, start=FEED_START, shape=(96, 96), seed=5,
        grid_mapping=SYNTH_GRID_MAPPING,
    )  # fmt: skip
    ingestor = Ingestor(settings, redis_conn)
    worker = InferenceWorker(settings, redis_conn, MethodRunner(settings), consumer="prob")
    for path in frames:
        assert ingestor.ingest_bytes(path.read_bytes(), str(path)).outcome == "accepted"
        while worker.process_once() > 0:
            pass
    with serving(create_app(settings, redis_conn)) as base_url:
        yield base_url, settings, worker


def test_the_worker_stores_probabilities_with_the_ensemble_mean(probabilistic):
    _, _settings, worker = probabilistic
    forecast = worker.forecasts.latest(SITE, "steps")
    assert forecast is not None and forecast.members == 10
    assert forecast.model_version.startswith("steps-10m-seed24-nonparametric")
    assert forecast.thresholds_mmh == (0.5, 2.0, 5.0, 10.0, 30.0)
    p = forecast.probability
    assert p is not None and p.shape == (15, 5, 32, 32)
    assert (np.diff(p, axis=1) <= 1e-6).all()  # a higher threshold is never more likely
    assert p[:, 0].max() > 0.5  # the feed rains
    again = decode_forecast(encode_forecast(forecast))
    np.testing.assert_array_equal(again.probability, p)
    assert worker.forecasts.latest(SITE, "convlstm").probability is None
    # the network's probabilities: its own forecast, read as a neighbourhood ensemble
    learned = worker.forecasts.latest(SITE, "convlstm-probability")
    network = worker.forecasts.latest(SITE, "convlstm")
    np.testing.assert_allclose(learned.grey, network.grey, atol=2e-5)
    assert learned.members is None and learned.probability.shape == (15, 5, 32, 32)
    assert (
        learned.model_version.startswith("convlstm-probability-") and "-r1" in learned.model_version
    )


def test_live_probability_tables_equal_pysteps_on_the_same_forecasts(probabilistic):
    _, _settings, worker = probabilistic
    acc = worker.verification.summed_probability([SITE], "steps", 15)
    scores = acc.scores()
    # the same forecasts and observations, scored with pysteps directly: lead 1, 0.5 mm/h
    reldiag = probscores.reldiag_init(0.5, n_bins=10, min_count=0)
    roc = probscores.ROC_curve_init(0.5, n_prob_thrs=10)
    issued = worker.forecasts.issue_times(SITE, "steps")
    for issue_time in issued:
        forecast = worker.forecasts.get(SITE, "steps", issue_time)
        observed = worker.window.frame_at(SITE, issue_time + timedelta(minutes=6))
        if observed is None:
            continue
        observed_mmh = worker.conversion.rain_mmh(observed.grey)
        probscores.reldiag_accum(reldiag, forecast.probability[0, 0], observed_mmh)
        probscores.ROC_curve_accum(roc, forecast.probability[0, 0], observed_mmh)
    assert reldiag["num_idx"].sum() > 0
    np.testing.assert_array_equal(acc.arrays["rel_count"][0, 0], reldiag["num_idx"])
    np.testing.assert_array_equal(acc.arrays["rel_observed"][0, 0], reldiag["Y_sum"])
    np.testing.assert_array_equal(acc.arrays["roc_hits"][0, 0], roc["hits"])
    np.testing.assert_array_equal(acc.arrays["roc_false_alarms"][0, 0], roc["false_alarms"])
    _, _, area = probscores.ROC_curve_compute(roc, compute_area=True)
    assert scores["roc_area"]["0.5"][0] == pytest.approx(area)
    # verifying the same frames again counts nothing twice
    before = acc.to_dict()
    for issue_time in issued:
        worker.verify_observation(SITE, issue_time + timedelta(minutes=6))
    assert worker.verification.summed_probability([SITE], "steps", 15).to_dict() == before


def test_the_api_serves_probabilities_in_every_format(probabilistic, tmp_path):
    base_url, _settings, worker = probabilistic
    url = f"{base_url}/v1/sites/{SITE}/nowcast/latest"
    forecast = worker.forecasts.latest(SITE, "steps")

    body = httpx.get(url, params={"method": "steps", "product": "probability"}).json()
    assert body["members"] == 10 and body["thresholds_mmh"] == [0.5, 2.0, 5.0, 10.0, 30.0]
    assert np.asarray(body["probability_percent"]).shape == (15, 5, 32, 32)
    np.testing.assert_array_equal(
        np.asarray(body["probability_percent"]), np.rint(forecast.probability * 100)
    )
    one = httpx.get(url, params={"method": "steps", "product": "probability", "threshold": 2})
    assert one.json()["thresholds_mmh"] == [2.0]

    nc = httpx.get(url, params={"method": "steps", "product": "probability", "format": "netcdf"})
    assert nc.status_code == 200 and nc.headers["content-type"] == "application/x-netcdf"
    (tmp_path / "p.nc").write_bytes(nc.content)
    with netCDF4.Dataset(tmp_path / "p.nc") as ds:
        variable = ds["probability_of_rainfall_rate_above_threshold"]
        assert variable.dimensions == ("threshold", "time", "y", "x") and variable.units == "1"
        assert ds["threshold"].standard_name == "rainfall_rate"
        assert list(ds["threshold"][:]) == [0.5, 2.0, 5.0, 10.0, 30.0]
        np.testing.assert_allclose(variable[:], np.moveaxis(forecast.probability, 1, 0), atol=1e-6)
    from tests.service.test_geo_outputs import _failures

    assert _failures(tmp_path / "p.nc", "cf:1.8") == []

    png = httpx.get(
        url, params={"method": "steps", "product": "probability", "format": "png", "threshold": 5}
    )
    assert png.status_code == 200 and Image.open(io.BytesIO(png.content)).format == "PNG"
    (tmp_path / "probability.png").write_bytes(png.content)

    areas = httpx.get(
        url,
        params={"method": "steps", "product": "probability", "format": "geojson", "threshold": 0.5},
    ).json()
    levels = {f["properties"]["probability_at_least"] for f in areas["features"]}
    assert levels == {0.1, 0.5, 0.9} and len(areas["features"]) == 45
    first = [f for f in areas["features"] if f["properties"]["lead"] == 1]
    sizes = [f["properties"]["area_km2"] for f in first]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 0  # 10 % covers 50 % covers 90 %

    def refused(**params: object) -> str:
        response = httpx.get(url, params={"product": "probability", **params})
        assert response.status_code == 422, response.text
        return json.loads(response.text)["detail"]

    assert "not a probabilistic method" in refused(method="convlstm")
    assert "not one of the forecast's" in refused(method="steps", threshold=3)
    assert "threshold=" in refused(method="steps", format="png")
    assert "gif" in refused(method="steps", format="gif")


def test_live_verification_and_metrics_carry_the_probabilistic_scores(probabilistic):
    base_url, _settings, _worker = probabilistic
    body = httpx.get(f"{base_url}/v1/verification", params={"site": SITE}).json()
    steps = body["probabilistic"]["steps"]
    assert set(body["probabilistic"]) == {"steps", "convlstm-probability"}
    assert any(v is not None for v in steps["brier_skill"]["0.5"])
    assert any(v is not None for v in steps["roc_area"]["0.5"])
    assert len(steps["reliability"]["0.5"]) == 15
    metrics = httpx.get(f"{base_url}/metrics").text
    for name in ("brier_skill", "roc_area"):
        labels = 'lead_step="1",method="steps"'
        assert f"nowcast_verification_{name}{{{labels}" in metrics, name


def test_a_subscriber_of_the_ensemble_gets_probability_areas_signed_and_once(
    probabilistic, redis_conn, tmp_path
):
    """A subscriber with method "steps" gets, per lead, threshold and probability level, the
    area where the chance of that much rain is at least that level; others are unchanged."""
    from tests.service.publish_helpers import publish_settings, publisher
    from tests.service.receiver import Receiver, receiving

    _base_url, _settings, worker = probabilistic
    issue_time = worker.forecasts.latest_issue_time(SITE, "steps")
    with receiving(Receiver(SECRET)) as rx:
        hooks = [webhook(rx.url, name="floods", method="steps"), webhook(rx.url, name="plain")]
        publishing = publish_settings(
            tmp_path / "pub", hooks, methods=METHODS, steps_members=10, publish_mode="cron"
        )
        pub = publisher(publishing, redis_conn, "prob")
        assert pub.publish_issue(SITE, issue_time) == {"floods": "delivered", "plain": "delivered"}
        again = pub.publish_issue(SITE, issue_time)
        assert again == {"floods": "already_delivered", "plain": "already_delivered"}
        pub.close()
    assert rx.bad_signatures == 0 and set(rx.accepted.values()) == {1}  # signed, once each
    stamp = f"{issue_time:%Y%m%dT%H%M%SZ}"
    floods = json.loads(rx.bodies[f"floods:{SITE}:{stamp}"])
    plain = json.loads(rx.bodies[f"plain:{SITE}:{stamp}"])
    assert floods["method"] == "steps" and floods["ensemble_members"] == 10
    assert floods["probability_levels"] == [0.1, 0.5, 0.9]
    assert floods["links"]["probability_netcdf"].endswith("&product=probability")
    forecast = worker.forecasts.get(SITE, "steps", issue_time)
    cell_km2 = forecast.georef.cell_area_km2()
    for k, lead in enumerate(floods["leads"]):
        area = lead["probability_areas"]["5.0"]["0.5"]
        cells = int((forecast.probability[k, 2] >= 0.5 - 1e-6).sum())
        assert area["cells"] == cells
        assert area["area_km2"] == pytest.approx(cells * cell_km2, abs=1e-3)
        levels = lead["probability_areas"]["0.5"]
        assert levels["0.1"]["cells"] >= levels["0.5"]["cells"] >= levels["0.9"]["cells"]
    assert plain["method"] == "convlstm" and "probability_areas" not in plain["leads"][0]


def test_a_subscriber_cannot_ask_for_a_method_the_worker_does_not_run(tmp_path):
    from pydantic import ValidationError

    from tests.service.publish_helpers import publish_settings

    with pytest.raises(ValidationError, match="asks for method 'steps'"):
        publish_settings(
            tmp_path, [webhook("https://a.example.org/h", method="steps")],
            methods=("convlstm", "extrapolation"),
        )  # fmt: skip


def test_the_worker_serves_probabilities_through_the_methods_calibration(settings, monkeypatch):
    """With a shipped reliability calibration, the runner's probabilities are the raw
    member fractions mapped through it, and the version says so."""
    import service.methods_runner as runner_module
    from model.verification.probability_calibration import ProbabilityCalibration

    table = ([0.05, 0.95], [0.2, 0.6])  # over-confident: pull toward the middle
    calibration = ProbabilityCalibration("steps", [{"0.5": table}] * 15, "a test")
    inputs = np.clip(np.random.default_rng(2).random((1, 5, 32, 32)), 0, 1).astype(np.float32)
    base = settings.model_copy(update={"methods": ("convlstm", "steps"), "steps_members": 6})
    monkeypatch.setattr(runner_module, "load_calibration", lambda name: None)
    raw = MethodRunner(base).run(inputs)[1]
    monkeypatch.setattr(
        runner_module, "load_calibration", lambda name: calibration if name == "steps" else None
    )
    runner = MethodRunner(base)
    calibrated = runner.run(inputs)[1]
    assert runner.versions["steps"].endswith(f"-calibrated-{calibration.version}")
    refitted = ProbabilityCalibration("steps", [{"0.5": ([0.05, 0.95], [0.1, 0.7])}] * 15, "b")
    assert refitted.version != calibration.version  # a refit is a new version
    assert raw.probability is not None and calibrated.probability is not None
    np.testing.assert_allclose(
        calibrated.probability, calibration.apply(raw.probability, raw.thresholds_mmh), atol=1e-6
    )
    np.testing.assert_allclose(calibrated.grey, raw.grey)  # the mean is not touched


def test_the_worker_calibrates_each_site_by_its_own_issue_time_regime(settings, monkeypatch):
    """A calibration by regime: a nearly dry site and a wet one in one batch each take their
    own tables, chosen from their own inputs."""
    import service.methods_runner as runner_module
    from model.verification.probability_calibration import ProbabilityCalibration

    dry = [{"0.5": ([0.0, 1.0], [0.0, 0.5])}] * 15  # halves
    wet = [{"0.5": ([0.0, 1.0], [0.5, 1.0])}] * 15  # lifts
    calibration = ProbabilityCalibration("steps", dry, "a test, by regime", "wet-fraction", wet)
    inputs = np.zeros((2, 5, 32, 32), dtype=np.float32)
    inputs[1] = 0.6  # about 7 mm/h everywhere: wet
    inputs[0, :, :4, :4] = 0.6  # 1.6 % of the cells: dry
    base = settings.model_copy(update={"methods": ("steps",), "steps_members": 6})
    monkeypatch.setattr(runner_module, "load_calibration", lambda name: None)
    raw = MethodRunner(base).run(inputs)[0].probability
    monkeypatch.setattr(runner_module, "load_calibration", lambda name: calibration)
    served = MethodRunner(base).run(inputs)[0].probability
    assert raw is not None and served is not None
    np.testing.assert_allclose(served[0, :, 0], raw[0, :, 0] * 0.5, atol=1e-6)
    np.testing.assert_allclose(served[1, :, 0], 0.5 + raw[1, :, 0] * 0.5, atol=1e-6)
