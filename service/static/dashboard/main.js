// Loading from the /v1 API, the refresh loop and the controls; init() starts it all.
// One of the dashboard's classic scripts (service/static/dashboard.html loads them in order;
// they share the page's global scope), no build step, nothing from a CDN.
"use strict";

// ---------------------------------------------------------------- loading
function periodSince(site) {
  if (state.period === "all" || !site || !site.newest_frame) return null;
  const newest = new Date(site.newest_frame).getTime();
  return new Date(newest - Number(state.period) * 3600 * 1000).toISOString().replace(".000Z", "Z");
}

// The issue time the "Issued" choice names (null: the latest): the site's newest frame minus
// the offset; "auto" takes the earliest of 90, 60 and 30 minutes back whose 5 input frames
// are all in the window, so that most leads can be compared with what was observed.
function chosenIssueTime(site) {
  if (state.issueOffset === "0" || !site.newest_frame) return null;
  const newest = new Date(site.newest_frame).getTime();
  const iso = (t) => new Date(t).toISOString().replace(".000Z", "Z");
  if (state.issueOffset !== "auto") return iso(newest - Number(state.issueOffset) * 60000);
  if (!site.cadence_min || !site.oldest_frame) return null;
  const step = site.cadence_min * 60000, oldest = new Date(site.oldest_frame).getTime();
  const gaps = (site.gaps || []).map((t) => new Date(t).getTime());
  for (const offset of [90, 60, 30]) {
    const issue = newest - offset * 60000, first = issue - 4 * step;
    if (first >= oldest && !gaps.some((g) => g >= first && g <= issue)) return iso(issue);
  }
  return null;
}

async function loadNowcast(site) {
  const issue = chosenIssueTime(site);
  const which = issue ? encodeURIComponent(issue) : "latest";
  const base = `/v1/sites/${encodeURIComponent(site.id)}/nowcast/${which}?method=${state.method}`;
  try {
    // the head (no frames) gives the issue time and the full grid: fetch frames only when new,
    // thinned to at most MAX_DRAWN_CELLS a side (small grids are drawn cell by cell)
    const head = await getJson(`${base}&frames=false&stride=1`);
    const stride = Math.max(1, Math.ceil(Math.max(head.shape[1], head.shape[2]) / MAX_DRAWN_CELLS));
    state.strides[site.id] = stride;
    const key = `${site.id}|${state.method}|${head.issue_time}|${stride}`;
    if (key !== state.nowcastKey || !state.nowcast) {
      const nc = await getJson(`${base}&stride=${stride}`);
      const sameSeries = state.nowcastKey && state.nowcastKey.startsWith(`${site.id}|${state.method}|`);
      if (!sameSeries) state.frame = 0;  // a new issue time keeps the animation's place
      state.nowcast = nc;
      state.nowcastKey = key;
    }
    state.nowcastError = null;
  } catch (err) {
    if (err instanceof Unreachable) throw err;
    state.nowcast = null;
    state.nowcastKey = null;
    state.nowcastError = issue
      ? `No ${state.method} forecast for ${site.id} issued ${fmtTime(issue)}: ${err.message}`
      : `No ${state.method} forecast for ${site.id}: ${err.message}`;
  }
}

// Once per site: its lon/lat lines (none for a site without georeference).
async function loadGraticule(site) {
  if (site.id in state.graticules) return;
  state.graticules[site.id] = site.georeferenced
    ? await getJson(`/v1/sites/${encodeURIComponent(site.id)}/graticule`) : null;
}

async function loadObserved(site) {
  const stride = state.strides[site.id] || 1;
  const key = `${site.id}|${site.newest_frame}|${stride}`;
  if (key === state.observedKey && state.observed) return;
  try {
    state.observed = await getJson(
      `/v1/sites/${encodeURIComponent(site.id)}/frames/latest?n=${OBSERVED_FRAMES}&stride=${stride}`);
    state.observedKey = key;
    state.observedError = null;
  } catch (err) {
    if (err instanceof Unreachable) throw err;
    state.observed = null;
    state.observedKey = null;
    state.observedError = err.message;
  }
}

async function loadVerification(site) {
  const params = new URLSearchParams({ site: site.id });
  const since = periodSince(site);
  if (since) params.set("since", since);
  $("period-anchor").textContent = site.newest_frame ? fmtTime(site.newest_frame) : "no frame yet";
  try {
    state.verification = await getJson(`/v1/verification?${params}`);
  } catch (err) {
    if (err instanceof Unreachable) throw err;
    state.verification = null;
  }
}

async function loadReadiness() {
  state.ready = await getJson("/readyz", { acceptStatus: [503] });
}

async function loadQuarantineTotal() {
  let text;
  try {
    text = await (await request("/metrics")).text();
  } catch (err) {
    if (err instanceof Unreachable) throw err;
    state.quarantineTotal = null;  // no /metrics here: the per-site counts still show
    return;
  }
  const reasons = [];
  let total = 0;
  const pattern = /^nowcast_frames_quarantined_total\{reason="([^"]*)"\}\s+([0-9.eE+]+)/gm;
  for (const m of text.matchAll(pattern)) {
    const n = Math.round(Number(m[2]));
    total += n;
    if (n) reasons.push(`${m[1]}: ${n}`);
  }
  state.quarantineTotal = { total, reasons };
}

async function refresh() {
  if (state.busy) { state.again = true; return; }  // a selection changed mid-refresh: rerun
  state.busy = true;
  state.again = false;
  const errors = [];
  const guard = (p) => p.catch((err) => { errors.push(err); });
  try {
    try {
      state.sites = await getJson("/v1/sites");
    } catch (err) {
      errors.push(err);
      state.ready = { unreachable: true };
      renderReadiness();
    }
    if (!errors.length) {
      if (!state.sites.some((s) => s.id === state.site)) state.site = state.sites.length ? state.sites[0].id : null;
      renderSelectors();
      const site = currentSite();
      const jobs = [guard(loadReadiness()), guard(loadQuarantineTotal())];
      if (site) {
        jobs.push(guard(loadNowcast(site).then(() => loadObserved(site))), guard(loadVerification(site)),
                  guard(loadGraticule(site)));
      }
      await Promise.all(jobs);
      if (!site) {
        state.nowcast = null; state.observed = null; state.verification = null;
        state.nowcastError = "no site yet"; state.observedError = "no site yet";
      }
      renderMethodSelect();
      renderSitesTable();
      renderOverview();
      renderReadiness();
      renderNowcastFacts();
      renderForecastFrame();
      renderObservedFrame();
      renderCharts();
      if (!errors.length) {
        state.lastOk = new Date();
        renderLag();
        if (!document.body.dataset.ready) document.body.dataset.ready = "1";
      }
    }
    showError(errors);
  } finally {
    state.busy = false;
  }
  if (state.again) refresh();
}

// ---------------------------------------------------------------- interaction
function saveHash() {
  const p = new URLSearchParams({ site: state.site || "", method: state.method, period: state.period,
    threshold: String(state.threshold), issued: state.issueOffset });
  history.replaceState(null, "", `#${p}`);
}

function selectSite(id) {
  if (id === state.site) return;
  state.site = id;
  state.nowcast = null; state.nowcastKey = null; state.observed = null; state.observedKey = null;
  state.frame = 0;
  saveHash();
  refresh();
}

function init() {
  const p = new URLSearchParams(location.hash.slice(1));
  if (p.get("site")) state.site = p.get("site");
  if (/^[a-z0-9_-]{1,40}$/.test(p.get("method") || "")) state.method = p.get("method");
  if (["1", "6", "24", "all"].includes(p.get("period"))) state.period = p.get("period");
  if (["auto", "0", "30", "60", "90"].includes(p.get("issued"))) state.issueOffset = p.get("issued");
  if (p.get("threshold") && isFinite(Number(p.get("threshold")))) state.threshold = Number(p.get("threshold"));
  $("method-select").value = state.method;
  $("period-select").value = state.period;
  $("issue-select").value = state.issueOffset;
  $("threshold-select").value = String(state.threshold);

  $("site-select").addEventListener("change", (e) => selectSite(e.target.value));
  $("method-select").addEventListener("change", (e) => {
    state.method = e.target.value;
    state.nowcast = null; state.nowcastKey = null; state.frame = 0;
    saveHash(); refresh();
  });
  $("period-select").addEventListener("change", (e) => { state.period = e.target.value; saveHash(); refresh(); });
  $("issue-select").addEventListener("change", (e) => {
    state.issueOffset = e.target.value;
    state.nowcast = null; state.nowcastKey = null; state.frame = 0;
    saveHash(); refresh();
  });
  $("threshold-select").addEventListener("change", (e) => {
    state.threshold = Number(e.target.value); saveHash(); renderCharts();
  });
  $("play-toggle").addEventListener("click", () => {
    state.playing = !state.playing;
    $("play-toggle").textContent = state.playing ? "Pause" : "Play";
  });
  $("lead-slider").addEventListener("input", (e) => {
    state.playing = false;
    $("play-toggle").textContent = "Play";
    state.frame = Number(e.target.value);
    renderForecastFrame();
    renderObservedFrame();
  });

  renderCharts();
  getJson("/v1/colour-scale").then((scale) => {
    SCALE = scale.steps.map((step) => ({ ...step, rgb: hexRgb(step.colour) }));
    drawColourBar();
    renderForecastFrame();
    renderObservedFrame();
  }).catch(() => {});  // the refresh shows the banner when the API is unreachable
  refresh();
  setInterval(refresh, REFRESH_MS);
  setInterval(tick, FRAME_MS);
  setInterval(renderLag, 1000);
}

init();
