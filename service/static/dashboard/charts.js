// The verification charts: scores per lead, reliability diagram, summary note.
// One of the dashboard's classic scripts (service/static/dashboard.html loads them in order;
// they share the page's global scope), no build step, nothing from a CDN.
"use strict";

// ---------------------------------------------------------------- charts
function thresholdKey(table, threshold) {
  return Object.keys(table || {}).find((k) => Math.abs(parseFloat(k) - threshold) < 1e-9);
}

// the methods the service runs (those it verifies), the usual ones first in their order
function servedMethods(v) {
  return [...METHODS.filter((m) => m in v.methods),
    ...Object.keys(v.methods).filter((m) => !METHODS.includes(m))];
}

// What the verification of the period holds, at the chosen threshold: cell pairs and the
// leads with pairs (the same for every method: all are verified on the same observations),
// and the leads where any method's CSI is defined (a point on the CSI chart). The charts'
// empty message and the note under them both come from here, so they cannot disagree.
function verificationSummary(v, threshold) {
  const methods = v ? servedMethods(v) : [];
  if (!methods.length) return { pairs: 0, leadsWithPairs: 0, nLeads: 0, leadsScored: 0 };
  const n = v.methods[methods[0]].n_cells || [];
  const defined = (m, i) => {
    const key = thresholdKey(v.methods[m].csi, threshold);
    const x = key ? v.methods[m].csi[key][i] : null;
    return x !== null && x !== undefined;
  };
  return {
    pairs: n.reduce((a, b) => a + b, 0),
    leadsWithPairs: n.filter((x) => x > 0).length,
    nLeads: n.length,
    leadsScored: n.filter((_, i) => methods.some((m) => defined(m, i))).length,
  };
}

// A tick step of 0.1, 0.2, 0.25, 0.5, 1 or 2 giving about `n` ticks over `span`.
function tickStep(span, n = 5) {
  return [0.1, 0.2, 0.25, 0.5, 1, 2].find((s) => span / s <= n + 1) || 5;
}

// `table`: "methods" (deterministic scores) or "probabilistic" (the probabilistic methods');
// `yMin`: the lowest bottom of the axis (a skill score can be negative: the axis reaches down
// to the lowest value, by half units, to at most `yFloor`; a value below that is drawn on the
// bottom edge as a hollow marker whose tooltip gives it).
function drawChart(svg, score, title, table = "methods", yMin = 0, yFloor = -2) {
  svg.replaceChildren();
  const W = 380, H = 230, L = 40, R = 12, B = 34;
  const v = state.verification;
  svg.append(el("svg:text", { x: L, y: 15, class: "title" }, title));
  if (!v) {
    svg.append(el("svg:text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no verification data"));
    svg.dataset.state = "empty";
    return;
  }
  // legend: the methods the API verifies (the usual ones first, in their colours), in as many
  // rows as they need: every method is named, none cut at the chart's edge
  const methods = table === "methods" ? servedMethods(v) : Object.keys(v.probabilistic || {});
  const style = (m) => METHOD_STYLE[m] || { colour: "#b197fc", dash: "2 3" };
  const legend = [];
  let lx = L, row = 0;
  for (const m of methods) {
    const width = 24 + m.length * 6.2;
    if (lx > L && lx + width > W - R) { lx = L; row += 1; }
    legend.push([m, lx, 28 + row * 13]);
    lx += width;
  }
  const T = 40 + row * 13;
  for (const [m, x, y] of legend) {
    const st = style(m);
    svg.append(el("svg:line", { x1: x, x2: x + 16, y1: y, y2: y, stroke: st.colour,
      "stroke-width": 2.5, "stroke-dasharray": st.dash || null }));
    svg.append(el("svg:text", { x: x + 20, y: y + 3, class: "legend", "data-method": m }, m));
  }
  // the axis reaches the lowest value shown (skill below 0 is worse than the reference)
  const all = methods.flatMap((m) => {
    const key = thresholdKey(v[table][m][score], state.threshold);
    return key ? v[table][m][score][key].filter((y) => y !== null && y !== undefined) : [];
  });
  const lowest = Math.min(yMin, ...all);
  const bottom = Math.max(yFloor, Math.min(yMin, Math.floor(lowest * 2) / 2));
  svg.dataset.yMin = String(bottom);
  const xs = v.lead_minutes || v.leads;
  const xMax = xs[xs.length - 1];
  const px = (x) => L + (x / xMax) * (W - L - R);
  const py = (y) => T + (1 - (Math.max(y, bottom) - bottom) / (1 - bottom)) * (H - T - B);
  // grid, axes, and the zero line (a score's "no better than the reference")
  const step = tickStep(1 - bottom);
  for (let y = Math.ceil(bottom / step) * step; y <= 1 + 1e-9; y += step) {
    const t = Math.round(y * 100) / 100;
    svg.append(el("svg:line", { x1: L, x2: W - R, y1: py(t), y2: py(t),
      class: t === 0 ? "axis zero" : "gridline" }));
    svg.append(el("svg:text", { x: L - 6, y: py(t) + 3, "text-anchor": "end" }, String(t)));
  }
  svg.append(el("svg:line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
  svg.append(el("svg:text", { x: L, y: H - B + 15, "text-anchor": "middle" }, "0"));
  const every = Math.max(1, Math.ceil(xs.length / 5));
  for (let i = every - 1; i < xs.length; i += every) {
    svg.append(el("svg:line", { x1: px(xs[i]), x2: px(xs[i]), y1: H - B, y2: H - B + 4, class: "axis" }));
    svg.append(el("svg:text", { x: px(xs[i]), y: H - B + 15, "text-anchor": "middle" }, fmtMinutes(xs[i])));
  }
  svg.append(el("svg:text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" },
    v.lead_minutes ? "lead time (min)" : "lead (steps; sites differ in cadence)"));
  // series: one <g data-method> per method; null splits the line (a gap, not a zero)
  let anyPoint = false;
  for (const m of methods) {
    const scores = v[table][m];
    const key = thresholdKey(scores[score], state.threshold);
    const values = key ? scores[score][key] : [];
    const st = style(m);
    const g = el("svg:g", { class: "series", "data-method": m });
    let segment = [], points = 0;
    const flush = () => {
      if (segment.length > 1) {
        g.append(el("svg:path", { d: "M" + segment.join("L"), fill: "none", stroke: st.colour,
          "stroke-width": 2, "stroke-dasharray": st.dash || null, "stroke-linejoin": "round" }));
      }
      segment = [];
    };
    values.forEach((y, i) => {
      if (y === null || y === undefined) { flush(); return; }
      points++;
      segment.push(`${px(xs[i]).toFixed(1)},${py(y).toFixed(1)}`);
      const below = y < bottom;  // off the axis: a hollow marker on its bottom edge
      const dot = el("svg:circle", { cx: px(xs[i]).toFixed(1), cy: py(y).toFixed(1), r: 2.6,
        fill: below ? "none" : st.colour, stroke: st.colour, "data-lead": i + 1, "data-value": y,
        "data-below-axis": below ? "true" : null });
      dot.append(el("svg:title", {}, `${m} +${fmtMinutes(xs[i])} min: ${score.toUpperCase()} ${y.toFixed(3)}`));
      g.append(dot);
    });
    flush();
    g.dataset.points = String(points);
    anyPoint = anyPoint || points > 0;
    svg.append(g);
  }
  svg.dataset.state = anyPoint ? "drawn" : "empty";
  if (!anyPoint) {
    const summary = verificationSummary(v, state.threshold);
    svg.append(el("svg:text", { x: (L + W - R) / 2, y: py(0.5), "text-anchor": "middle" },
      summary.pairs
        ? `no rain ≥ ${state.threshold} mm/h observed or forecast in this period`
        : "no verified pairs in this period"));
  }
}

// Observed frequency against forecast probability at the selected threshold, a line per
// lead of RELIABILITY_LEADS, for the first probabilistic method; bins under 10 cases left out.
const RELIABILITY_LEADS = [1, 5, 10, 15];
function drawReliability(svg) {
  svg.replaceChildren();
  const W = 380, H = 230, L = 40, R = 12, T = 40, B = 34;
  const v = state.verification;
  const method = v && Object.keys(v.probabilistic || {})[0];
  svg.append(el("svg:text", { x: L, y: 15, class: "title" },
    `Reliability${method ? ` of ${method}` : ""}, P(rain ≥ ${state.threshold} mm/h)`));
  const px = (x) => L + x * (W - L - R), py = (y) => T + (1 - y) * (H - T - B);
  for (const t of [0, 0.2, 0.4, 0.6, 0.8, 1]) {
    svg.append(el("svg:line", { x1: L, x2: W - R, y1: py(t), y2: py(t), class: t ? "gridline" : "axis" }));
    svg.append(el("svg:text", { x: L - 6, y: py(t) + 3, "text-anchor": "end" }, t.toFixed(1)));
    svg.append(el("svg:text", { x: px(t), y: H - B + 15, "text-anchor": "middle" }, t.toFixed(1)));
  }
  svg.append(el("svg:text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" },
    "forecast probability (y: observed frequency)"));
  svg.append(el("svg:line", { x1: px(0), y1: py(0), x2: px(1), y2: py(1), class: "axis",
    "stroke-dasharray": "4 3" }));
  let drawn = 0;
  if (method) {
    const table = v.probabilistic[method].reliability;
    const key = thresholdKey(table, state.threshold);
    RELIABILITY_LEADS.forEach((lead, n) => {
      const points = key ? table[key][lead - 1] : null;
      if (!points) return;
      const xy = points.forecast_probability.map((p, i) => [p, points.observed_frequency[i]])
        .filter(([p, o]) => p !== null && o !== null);
      if (!xy.length) return;
      const colour = `hsl(${260 - n * 45}, 70%, ${55 + n * 5}%)`;
      const g = el("svg:g", { class: "series", "data-lead": lead, "data-points": xy.length });
      g.append(el("svg:path", { d: "M" + xy.map(([p, o]) => `${px(p).toFixed(1)},${py(o).toFixed(1)}`).join("L"),
        fill: "none", stroke: colour, "stroke-width": 2 }));
      xy.forEach(([p, o]) => g.append(el("svg:circle", { cx: px(p).toFixed(1), cy: py(o).toFixed(1), r: 2.4, fill: colour })));
      const minutes = v.lead_minutes ? `+${fmtMinutes(v.lead_minutes[lead - 1])} min` : `step ${lead}`;
      svg.append(el("svg:text", { x: L + 4 + n * 80, y: 31, fill: colour }, minutes));
      svg.append(g);
      drawn += xy.length;
    });
  }
  svg.dataset.state = drawn ? "drawn" : "empty";
  if (!drawn) {
    svg.append(el("svg:text", { x: (L + W - R) / 2, y: py(0.5), "text-anchor": "middle" },
      "no bin with 10 verified cases yet"));
  }
}

function renderCharts() {
  const th = `≥ ${state.threshold} mm/h`;
  drawChart($("csi-chart"), "csi", `CSI ${th} (higher is better)`);
  drawChart($("pod-chart"), "pod", `POD ${th} (higher is better)`);
  drawChart($("far-chart"), "far", `FAR ${th} (lower is better)`);
  const probabilistic = Object.keys((state.verification || {}).probabilistic || {}).length > 0;
  $("probability-charts").hidden = !probabilistic;
  if (probabilistic) {
    drawChart($("bss-chart"), "brier_skill", `Brier skill ${th} (> 0: beats climatology)`,
      "probabilistic", -0.5);
    drawChart($("roc-chart"), "roc_area", `ROC area ${th} (0.5: no skill)`, "probabilistic");
    drawReliability($("reliability-chart"));
  }
  const v = state.verification, cells = $("verification-cells");
  if (!v) { cells.textContent = ""; return; }
  const s = verificationSummary(v, state.threshold);
  cells.textContent = `Verified in this period: ${s.pairs.toLocaleString("en")} cell pairs at `
    + `${s.leadsWithPairs} of ${s.nLeads} leads; at ≥ ${state.threshold} mm/h, CSI defined at `
    + `${s.leadsScored} of ${s.nLeads} leads`
    + (s.pairs && !s.leadsScored ? ` (no rain ≥ ${state.threshold} mm/h observed or forecast).` : ".");
}
