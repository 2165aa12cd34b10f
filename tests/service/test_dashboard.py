"""The operator dashboard (GET /) in a real headless browser against a real service.

Debian's chromium (``apt-get install chromium``) driven by Playwright, a real uvicorn server,
the embedded Redis and the small ConvLSTM. The screenshot lands in pytest's tmp dir.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ingest.ingestor import Ingestor
from service.api.app import create_app
from service.inference import InferenceWorker
from service.methods_runner import MethodRunner
from tests.service.live_server import serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SITE = "synth-01"
METHODS = ("convlstm", "extrapolation", "extrapolation-inflow", "sprog", "steps", "persistence")
READY = "document.body.dataset.ready === '1'"

# share of the forecast canvas's pixels that are painted (alpha > 0), and distinct colours
CANVAS_STATS = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let painted = 0;
  const colours = new Set();
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0) { painted++; colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]); }
  }
  return { painted: painted / (c.width * c.height), colours: colours.size };
}"""

# the distinct colours painted on a canvas, as #rrggbb
CANVAS_COLOURS = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const hex = (v) => v.toString(16).padStart(2, '0');
  const out = new Set();
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] === 255) out.add('#' + hex(d[i]) + hex(d[i + 1]) + hex(d[i + 2]));
  }
  return [...out];
}"""

# per chart: method -> leads (1-based) of the plotted points, and whether a line is drawn
CHART_SERIES = """(id) => {
  const out = {};
  for (const g of document.querySelectorAll(`#${id} g.series`)) {
    out[g.dataset.method] = {
      leads: [...g.querySelectorAll('circle')].map((c) => Number(c.dataset.lead)),
      paths: g.querySelectorAll('path').length,
    };
  }
  return out;
}"""


# per chart: each legend entry's method and right edge, the chart's width, its axis bottom, and
# whether it draws a zero line
CHART_FRAME = """(id) => {
  const svg = document.getElementById(id);
  return {
    legend: [...svg.querySelectorAll('text.legend')].map((t) => {
      const box = t.getBBox();
      return { method: t.dataset.method, right: box.x + box.width };
    }),
    width: svg.viewBox.baseVal.width,
    yMin: Number(svg.dataset.yMin),
    zero: svg.querySelectorAll('line.zero').length,
    below: [...svg.querySelectorAll('circle[data-below-axis]')].map((c) => Number(c.dataset.value)),
  };
}"""


# the lead slider moved to ``lead`` (1-based) as a user drags it
SET_LEAD = """(lead) => {
  const slider = document.getElementById('lead-slider');
  slider.value = String(lead - 1);
  slider.dispatchEvent(new Event('input'));
}"""

# the valid times the forecast and the observed map show
VALID_TIMES = """() => ['forecast-canvas', 'observed-canvas'].map(
  (id) => document.getElementById(id).dataset.valid)"""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """A fresh page; ``page.console_errors`` collects console errors and uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    new_page = context.new_page()
    errors: list[str] = []

    def on_console(message) -> None:
        # /readyz answers 503 while not ready (no live worker heartbeat here): expected
        if message.type == "error" and not message.location.get("url", "").endswith("/readyz"):
            errors.append(f"{message.text} ({message.location.get('url')})")

    new_page.on("console", on_console)
    new_page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    new_page.console_errors = errors
    yield new_page
    context.close()


@pytest.fixture
def live_service(settings, redis_conn, feed):
    """A served API over 10 ingested frames (forecasts and verification) and one duplicate."""
    ingestor = Ingestor(settings, redis_conn)
    for path in feed[:10]:
        assert ingestor.ingest_bytes(path.read_bytes(), str(path)).outcome == "accepted"
    assert ingestor.ingest_bytes(feed[3].read_bytes(), "again").outcome == "quarantined"
    worker = InferenceWorker(settings, redis_conn, MethodRunner(settings), consumer="dash-test")
    while worker.process_once() > 0:
        pass
    with serving(create_app(settings, redis_conn)) as base_url:
        yield base_url


def _plotted_leads(values: list[float | None]) -> list[int]:
    return [lead for lead, v in enumerate(values, start=1) if v is not None]


def _check_charts(page, scores: dict, threshold_key: str) -> None:
    """One series per method; a point for every defined score, nulls left out (gaps)."""
    for score in ("csi", "pod", "far"):
        series = page.evaluate(CHART_SERIES, f"{score}-chart")
        assert set(series) == set(METHODS), (score, series)
        for method in METHODS:
            expected = _plotted_leads(scores["methods"][method][score][threshold_key])
            assert expected, f"no verified {score} of {method} at {threshold_key}: bad fixture"
            assert series[method]["leads"] == expected, (score, method)
            assert series[method]["paths"] >= 1, (score, method)
        assert len(expected) < 15  # later leads are unverified: gaps, not zeros
        # every method is named in the legend, inside the chart (3 of 6 were cut at its edge)
        frame = page.evaluate(CHART_FRAME, f"{score}-chart")
        assert [e["method"] for e in frame["legend"]] == list(METHODS), score
        assert all(e["right"] <= frame["width"] for e in frame["legend"]), (score, frame)
    # the probabilistic method's Brier skill and ROC area, and its reliability diagram
    assert page.locator("#probability-charts").is_visible()
    for score, chart in (("brier_skill", "bss-chart"), ("roc_area", "roc-chart")):
        series = page.evaluate(CHART_SERIES, chart)
        assert set(series) == {"steps"}, (chart, series)
        values = scores["probabilistic"]["steps"][score][threshold_key]
        expected = _plotted_leads(values)
        assert series["steps"]["leads"] == expected, (score, expected)
        if score == "brier_skill":  # "above 0: beats climatology": the zero line is drawn, and
            frame = page.evaluate(CHART_FRAME, chart)  # no value sits clamped on the axis
            assert frame["zero"] == 1, frame
            shown = [v for v in values if v is not None]
            assert frame["yMin"] <= min([*shown, 0.0]) or frame["yMin"] == -2.0, frame
            assert frame["below"] == [v for v in shown if v < frame["yMin"]], frame
    bins = scores["probabilistic"]["steps"]["reliability"][threshold_key]
    drawn = page.locator("#reliability-chart").get_attribute("data-state")
    usable = any(
        o is not None for lead in (1, 5, 10, 15) for o in bins[lead - 1]["observed_frequency"]
    )
    assert drawn == ("drawn" if usable else "empty")


def test_dashboard_shows_sites_forecast_animation_and_verification(live_service, page, tmp_path):
    base_url = live_service
    page.goto(f"{base_url}/")
    page.wait_for_function(READY, timeout=15_000)

    # sites table and the selected site's figures
    site = httpx.get(f"{base_url}/v1/sites").json()[0]
    row = page.locator(f'#sites-table tr[data-site="{SITE}"]')
    assert row.count() == 1
    assert row.locator('td[data-col="frames"]').inner_text() == "10"
    assert row.locator('td[data-col="mask"]').inner_text() == "none (unmasked)"
    assert row.locator('td[data-col="model"]').inner_text() == site["model_version"]
    assert row.locator('td[data-col="accepted"]').inner_text() == "10"
    # the warming-up refusal before the first forecast is history once forecasts flow: shown
    # dimmed, not in the warning colour (it stayed orange long after)
    refusal = site["last_refusal"]
    assert refusal and refusal["reason"] == "warming_up", site
    assert site["last_issue_time"] > refusal["issue_time"]
    assert "dim" in (row.locator('td[data-col="refusal"]').get_attribute("class") or "")
    assert page.locator("#site-select").input_value() == SITE
    assert page.locator("#ingest-lag").inner_text().endswith(" s")
    assert page.locator("#quarantine-total").inner_text() == "1"  # the duplicate
    assert page.locator("#error-banner").is_hidden()
    assert page.locator("#last-updated").inner_text().startswith("Last updated")

    # the animation steps through the leads; at lead 1 the forecast and the observation of
    # the same valid time are both painted (auto: the forecast issued 30 min before the newest
    # frame, the earliest of 90/60/30 min whose inputs are in the window)
    first = page.locator("#lead-label").inner_text()
    assert first.startswith("valid ") and " min" in first
    page.wait_for_function(
        "(t) => document.getElementById('lead-label').innerText !== t", arg=first, timeout=5_000
    )
    page.click("#play-toggle")
    page.evaluate(SET_LEAD, 1)
    assert page.locator("#forecast-message").is_hidden()
    for canvas in ("forecast-canvas", "observed-canvas"):
        stats = page.evaluate(CANVAS_STATS, canvas)
        assert stats["painted"] > 0.2 and stats["colours"] > 3, (canvas, stats)
    assert page.evaluate(VALID_TIMES) == ["2026-03-01T12:30:00Z"] * 2
    # the maps are coloured in the served scale (pysteps', as the PNG and GIF) and only in it
    scale = httpx.get(f"{base_url}/v1/colour-scale").json()
    assert page.locator("#colour-bar rect[data-from]").count() == len(scale["steps"])
    allowed = {s["colour"] for s in scale["steps"]} | {"#3a4048"}  # no data
    for canvas in ("forecast-canvas", "observed-canvas"):
        assert set(page.evaluate(CANVAS_COLOURS, canvas)) <= allowed, canvas
    page.click("#play-toggle")

    # verification charts match the API at the selected threshold (default 2 mm/h), then 0.5
    scores = httpx.get(f"{base_url}/v1/verification", params={"site": SITE}).json()
    _check_charts(page, scores, "2.0")
    page.select_option("#threshold-select", "0.5")
    _check_charts(page, scores, "0.5")
    assert "newest observed frame" in page.locator("#verification-note").inner_text()

    # the method choices are the served methods; another method is fetched and drawn
    options = page.locator("#method-select option").evaluate_all("(os) => os.map((o) => o.value)")
    assert options == list(METHODS)
    for method in ("extrapolation", "sprog"):
        page.select_option("#method-select", method)
        page.wait_for_function(
            f"document.getElementById('nowcast-facts').innerText.includes('{method}')",
            timeout=5_000,
        )
        assert page.evaluate(CANVAS_STATS, "forecast-canvas")["painted"] > 0.2, method

    page.select_option("#method-select", "convlstm")
    page.wait_for_function(
        "document.getElementById('nowcast-facts').innerText.includes('convlstm')", timeout=5_000
    )
    shot = Path(os.environ.get("DASHBOARD_SHOT", tmp_path / "dashboard.png"))
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert page.console_errors == []


def test_forecast_and_observation_show_one_valid_time_under_one_slider(live_service, page):
    base_url = live_service
    page.goto(f"{base_url}/#issued=30")
    page.wait_for_function(READY, timeout=15_000)
    assert page.locator("#issue-select").input_value() == "30"
    past = httpx.get(
        f"{base_url}/v1/sites/{SITE}/nowcast/2026-03-01T12:24:00Z", params={"frames": "false"}
    ).json()
    valid_times = [t.replace("+00:00", "Z") for t in past["valid_times"]]

    # playing: both maps move together, always at one valid time
    seen = set()
    for _ in range(8):
        forecast_valid, observed_valid = page.evaluate(VALID_TIMES)
        assert forecast_valid == observed_valid
        seen.add(forecast_valid)
        page.wait_for_timeout(250)
    assert len(seen) > 1 and seen <= set(valid_times)

    # paused on a lead that was observed: both painted; on a later one: "not observed yet"
    page.click("#play-toggle")
    assert page.locator("#play-toggle").inner_text() == "Play"
    page.evaluate(SET_LEAD, 3)
    assert page.evaluate(VALID_TIMES) == [valid_times[2]] * 2
    assert page.locator("#observed-canvas").get_attribute("data-state") == "drawn"
    assert "12:42" in page.locator("#lead-label").inner_text()
    assert "12:42" in page.locator("#observed-label").inner_text()
    page.evaluate(SET_LEAD, 10)
    assert page.evaluate(VALID_TIMES) == [valid_times[9]] * 2
    assert page.locator("#observed-canvas").get_attribute("data-state") == "missing"
    assert "not observed yet" in page.locator("#observed-message").inner_text()
    assert page.locator("#forecast-canvas").get_attribute("data-state") == "drawn"

    # the latest forecast: nothing observed at its valid times yet, and the map says so
    page.select_option("#issue-select", "0")
    page.wait_for_function(
        "document.getElementById('nowcast-title').innerText.includes('12:54')", timeout=5_000
    )
    page.evaluate(SET_LEAD, 1)
    assert page.locator("#observed-canvas").get_attribute("data-state") == "missing"
    assert page.console_errors == []


def test_verification_note_and_charts_agree_at_every_threshold(live_service, page):
    base_url = live_service
    page.goto(f"{base_url}/#period=all")
    page.wait_for_function(READY, timeout=15_000)
    scores = httpx.get(f"{base_url}/v1/verification", params={"site": SITE}).json()
    pairs = sum(scores["methods"][METHODS[0]]["n_cells"])
    assert pairs > 0
    for threshold, key in (("0.5", "0.5"), ("2", "2.0"), ("30", "30.0")):
        page.select_option("#threshold-select", threshold)
        scored = [
            any(scores["methods"][m]["csi"][key][i] is not None for m in METHODS) for i in range(15)
        ]
        note = page.locator("#verification-cells").inner_text()
        assert f"{pairs:,} cell pairs" in note, note
        assert f"CSI defined at {sum(scored)} of 15 leads" in note, note
        chart = page.locator("#csi-chart")
        assert chart.get_attribute("data-state") == ("drawn" if any(scored) else "empty")
        if not any(scored):
            assert f"no rain ≥ {threshold} mm/h observed or forecast" in chart.inner_text()
            assert "no rain" in note
            assert "no verified pairs" not in chart.inner_text()


def test_dashboard_without_data_then_unreachable_api_shows_the_banner(settings, redis_conn, page):
    with serving(create_app(settings, redis_conn)) as base_url:
        page.goto(f"{base_url}/")
        page.wait_for_function(READY, timeout=15_000)
        assert "no site has delivered a frame yet" in page.locator("#sites-table").inner_text()
        assert page.locator("#error-banner").is_hidden()
        assert page.console_errors == []
    page.evaluate("refresh()")  # the server is gone; do not wait for the next poll
    banner = page.locator("#error-banner")
    banner.wait_for(state="visible", timeout=10_000)
    assert "API unreachable" in banner.inner_text()


def test_the_dashboards_scripts_and_styles_come_from_the_service_revalidated(settings, redis_conn):
    with serving(create_app(settings, redis_conn)) as base_url:
        page = httpx.get(f"{base_url}/").text
        assets = re.findall(r'(?:src|href)="(/static/dashboard/[^"]+)"', page)
        assert len(assets) >= 2 and any(a.endswith(".css") for a in assets)
        for asset in assets:
            response = httpx.get(f"{base_url}{asset}")
            assert response.status_code == 200, asset
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["etag"]  # a reload revalidates: 304 when unchanged
            again = httpx.get(
                f"{base_url}{asset}", headers={"If-None-Match": response.headers["etag"]}
            )
            assert again.status_code == 304
        assert (
            "javascript"
            in httpx.get(f"{base_url}/static/dashboard/main.js").headers["content-type"]
        )
        for outside in ("/static/dashboard/../dashboard.html", "/static/dashboard/nope.js"):
            assert httpx.get(f"{base_url}{outside}").status_code == 404


def test_api_docs_render_their_operations_with_no_network(settings, redis_conn, page):
    """/docs (Swagger UI) and /redoc draw every operation with every request outside the
    service refused, as on a machine without network."""
    with serving(create_app(settings, redis_conn)) as base_url:
        outside: list[str] = []

        def only_the_service(route) -> None:
            if route.request.url.startswith(base_url):
                route.continue_()
            else:
                outside.append(f"{route.request.resource_type} {route.request.url}")
                route.abort()

        page.route("**/*", only_the_service)
        spec = httpx.get(f"{base_url}/openapi.json").json()
        operations = sum(len(methods) for methods in spec["paths"].values())
        page.goto(f"{base_url}/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        assert page.locator(".opblock").count() == operations
        assert page.get_by_text("/v1/sites/{site}/nowcast/latest", exact=True).count() >= 1
        page.goto(f"{base_url}/redoc")
        page.wait_for_selector("[data-section-id^='operation/']", timeout=30_000)
        sections = page.evaluate(
            "() => new Set([...document.querySelectorAll(\"[data-section-id^='operation/']\")]"
            ".map((e) => e.dataset.sectionId)).size"
        )
        assert sections == operations
        # ReDoc's own "by Redocly" logo is an image on its CDN: refused, nothing else asked
        assert all(entry.startswith("image ") for entry in outside), outside


def test_a_georeferenced_sites_maps_carry_its_lon_lat_lines(
    settings, redis_conn, feed, page, tmp_path
):
    """Both maps of a site with a projection get the graticule the API gives (lines drawn,
    labelled); a site on grid indices gets none."""
    from ingest.cf_writer import SYNTH_GRID_MAPPING, write_synthetic_feed
    from tests.service.helpers import FEED_START

    placed = write_synthetic_feed(
        tmp_path / "geo", 10, site_id="geo-01", start=FEED_START, shape=(96, 96), seed=5,
        grid_mapping=SYNTH_GRID_MAPPING,
    )  # fmt: skip
    ingestor = Ingestor(settings, redis_conn)
    for path in [*placed, *feed[:8]]:
        assert ingestor.ingest_bytes(path.read_bytes(), str(path)).outcome == "accepted"
    worker = InferenceWorker(settings, redis_conn, MethodRunner(settings), consumer="dash-geo")
    while worker.process_once() > 0:
        pass
    with serving(create_app(settings, redis_conn)) as base_url:
        lines = httpx.get(f"{base_url}/v1/sites/geo-01/graticule").json()["lines"]
        assert lines
        page.goto(f"{base_url}/#site=geo-01")
        page.wait_for_function(READY, timeout=15_000)
        page.click("#play-toggle")
        page.evaluate(SET_LEAD, 1)
        for canvas in ("forecast-canvas", "observed-canvas"):
            assert page.locator(f"#{canvas}").get_attribute("data-state") == "drawn", canvas
            drawn = page.locator(f"#{canvas}").get_attribute("data-graticule-lines")
            assert drawn == str(len(lines)), canvas
        page.locator("#forecast-canvas").screenshot(path=str(tmp_path / "geo.png"))

        page.select_option("#site-select", SITE)
        page.wait_for_function(
            "(c) => c.dataset.state === 'drawn' && c.dataset.graticuleLines === '0'",
            arg=page.locator("#forecast-canvas").element_handle(),
            timeout=5_000,
        )
        assert page.console_errors == []
