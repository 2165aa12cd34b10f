// The rain-rate colour scale, the forecast and observed maps and their animation.
// One of the dashboard's classic scripts (service/static/dashboard.html loads them in order;
// they share the page's global scope), no build step, nothing from a CDN.
"use strict";

// ---------------------------------------------------------------- colour scale
// The scale step of a rate (index into SCALE), -1 when dry (below the first level).
function scaleIndex(mmh) {
  let lo = -1, hi = SCALE.length - 1;
  while (lo < hi) {  // the last step whose lower bound is <= mmh
    const mid = Math.ceil((lo + hi + 1) / 2);
    if (SCALE[mid].from_mmh <= mmh) lo = mid; else hi = mid - 1;
  }
  return lo;
}

function drawColourBar() {
  const svg = $("colour-bar");
  svg.replaceChildren();
  svg.append(el("svg:rect", { x: 4, y: 4, width: 30, height: 14, fill: "#0d141c", stroke: "#243445" }));
  svg.append(el("svg:text", { x: 19, y: 34, "text-anchor": "middle", fill: "#8397ab", "font-size": 10 }, "dry"));
  if (!SCALE.length) return;
  const x0 = 44, w = 246, step = w / SCALE.length;
  SCALE.forEach((s, i) => {
    const x = x0 + i * step;
    svg.append(el("svg:rect", { x, y: 4, width: step + 0.5, height: 14, fill: s.colour, "data-from": s.from_mmh }));
    if (i % 2 === 1) {
      svg.append(el("svg:line", { x1: x, x2: x, y1: 18, y2: 23, stroke: "#8397ab" }));
      svg.append(el("svg:text", { x, y: 34, "text-anchor": "middle", fill: "#8397ab", "font-size": 10 },
        String(s.from_mmh)));
    }
  });
}

function drawRain(canvas, frame, graticule, stride) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  canvas.dataset.graticuleLines = "0";
  if (!frame || !frame.length) return;
  const rows = frame.length, cols = frame[0].length;
  const off = document.createElement("canvas");
  off.width = cols; off.height = rows;
  const octx = off.getContext("2d");
  const img = octx.createImageData(cols, rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = frame[r][c], p = (r * cols + c) * 4;
      if (v === null || v === undefined || Number.isNaN(v)) {
        [img.data[p], img.data[p + 1], img.data[p + 2]] = NO_DATA_RGB;
        img.data[p + 3] = 255;
      } else {
        const i = scaleIndex(v);
        if (i < 0) continue;  // dry: transparent, the canvas background shows
        [img.data[p], img.data[p + 1], img.data[p + 2]] = SCALE[i].rgb;
        img.data[p + 3] = 255;
      }
    }
  }
  octx.putImageData(img, 0, 0);
  const scale = Math.min(canvas.width / cols, canvas.height / rows);
  const w = cols * scale, h = rows * scale;
  ctx.imageSmoothingEnabled = false;
  const left = (canvas.width - w) / 2, top = (canvas.height - h) / 2;
  ctx.drawImage(off, left, top, w, h);
  drawGraticule(ctx, graticule, stride || 1, scale, left, top, canvas);
}

// The site's lon/lat lines (GET /v1/sites/{site}/graticule: polylines in full-grid cell
// coordinates) over a frame thinned by `stride` and drawn `scale` px a cell from (left, top).
function drawGraticule(ctx, graticule, stride, scale, left, top, canvas) {
  if (!graticule || !graticule.lines.length) return;
  const px = (x) => left + (x / stride + 0.5) * scale;
  const py = (y) => top + (y / stride + 0.5) * scale;
  ctx.save();
  ctx.strokeStyle = GRATICULE_COLOUR;
  ctx.fillStyle = GRATICULE_COLOUR;
  ctx.lineWidth = 1;
  ctx.font = "10px sans-serif";
  for (const line of graticule.lines) {
    for (const piece of line.pieces) {
      ctx.beginPath();
      piece.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
      ctx.stroke();
    }
    // labelled inside the map: a meridian at its southernmost point, a parallel at its western
    const points = line.pieces.flat();
    const [x, y] = points.reduce((best, p) => (line.axis === "lon"
      ? (p[1] > best[1] ? p : best) : (p[0] < best[0] ? p : best)));
    const hemisphere = line.axis === "lon" ? (line.value_deg < 0 ? "W" : "E") : (line.value_deg < 0 ? "S" : "N");
    ctx.fillText(`${Math.abs(line.value_deg)}°${hemisphere}`, px(x) + 2, py(y) - 3);
  }
  ctx.restore();
  canvas.dataset.graticuleLines = String(graticule.lines.length);
}

// ---------------------------------------------------------------- maps + animation
// Draws `frame` on the map `name` ("forecast" or "observed"), or shows `missing` over it.
function renderMap(name, frame, missing) {
  const canvas = $(`${name}-canvas`), msg = $(`${name}-message`);
  const site = state.site;
  drawRain(canvas, missing ? null : frame, state.graticules[site], state.strides[site]);
  msg.textContent = missing || "";
  msg.hidden = !missing;
  canvas.dataset.state = missing ? "missing" : "drawn";
}

function renderForecastFrame() {
  const nc = state.nowcast, label = $("lead-label");
  if (!nc) {
    renderMap("forecast", null, state.nowcastError || "no forecast");
    label.textContent = "–";
    $("forecast-canvas").dataset.valid = "";
    return;
  }
  const i = state.frame % nc.frames.length;
  renderMap("forecast", nc.frames[i], null);
  $("forecast-canvas").dataset.lead = String(i + 1);
  $("forecast-canvas").dataset.valid = nc.valid_times[i];
  label.replaceChildren(
    el("strong", {}, `valid ${fmtTime(nc.valid_times[i], false)}`),
    document.createTextNode(`  +${fmtMinutes(nc.lead_minutes[i])} min · max at this lead ${nc.max_rain_mmh[i].toFixed(1)} mm/h`),
  );
  $("lead-slider").value = String(i);
}

// The observed frame valid at the forecast frame's valid time (one slider drives both maps);
// without a forecast, the newest observed frame.
function renderObservedFrame() {
  const obs = state.observed, nc = state.nowcast, label = $("observed-label");
  const canvas = $("observed-canvas");
  if (!obs || !obs.frames.length) {
    renderMap("observed", null, state.observedError || "no observed frame");
    label.textContent = "–";
    canvas.dataset.valid = "";
    return;
  }
  const n = obs.frames.length;
  const newest = obs.valid_times[n - 1];
  let valid = newest;
  if (nc) valid = nc.valid_times[state.frame % nc.frames.length];
  const i = obs.valid_times.findIndex((t) => new Date(t).getTime() === new Date(valid).getTime());
  canvas.dataset.valid = valid;
  if (i < 0) {
    const later = new Date(valid).getTime() > new Date(newest).getTime();
    renderMap("observed", null, later
      ? `not observed yet: the newest frame is ${fmtTime(newest, false)}`
      : `no frame valid ${fmtTime(valid, false)} in the window`);
  } else {
    renderMap("observed", obs.frames[i], null);
  }
  label.replaceChildren(
    el("strong", {}, `valid ${fmtTime(valid, false)}`),
    document.createTextNode(i === n - 1 ? "  newest frame" : ""),
  );
}

function tick() {
  if (!state.playing) return;
  if (state.nowcast) state.frame = (state.frame + 1) % state.nowcast.frames.length;
  renderForecastFrame();
  renderObservedFrame();
}

function renderNowcastFacts() {
  const dl = $("nowcast-facts");
  dl.replaceChildren();
  const nc = state.nowcast;
  $("forecast-heading").textContent = `Forecast · ${state.method}`;
  if (!nc) { $("nowcast-title").textContent = ""; return; }
  $("nowcast-title").textContent = `${nc.site} · issued ${fmtTime(nc.issue_time)}`;
  const facts = [
    ["Issue time", fmtTime(nc.issue_time)], ["Method", nc.method],
    ["Model", nc.model_version], ["Normalisation", nc.norm_version],
    ["Leads", `${nc.lead_minutes.length} × ${fmtMinutes(nc.cadence_min)} min`],
    ["Grid drawn", `${nc.shape[1]} × ${nc.shape[2]} (stride ${nc.stride})`],
    ["Peak rate, all leads", `${Math.max(...nc.max_rain_mmh).toFixed(1)} mm/h`],
  ];
  for (const [k, v] of facts) dl.append(el("dt", {}, k), el("dd", {}, v));
}
