// The tables and header: site and method selectors, sites table, overview, lag, readiness.
// One of the dashboard's classic scripts (service/static/dashboard.html loads them in order;
// they share the page's global scope), no build step, nothing from a CDN.
"use strict";

// ---------------------------------------------------------------- tables, header
function renderSelectors() {
  const select = $("site-select");
  const ids = state.sites.map((s) => s.id);
  if ([...select.options].map((o) => o.value).join() !== ids.join()) {
    select.replaceChildren(...ids.map((id) => el("option", { value: id }, id)));
  }
  select.value = state.site || "";
  select.disabled = !ids.length;
}

// the method choices: the served methods once known (and the chosen one, served or not)
function renderMethodSelect() {
  const select = $("method-select");
  if (state.verification) {
    const names = servedMethods(state.verification);
    if (!names.includes(state.method)) names.push(state.method);
    if ([...select.options].map((o) => o.value).join() !== names.join()) {
      select.replaceChildren(...names.map((m) => el("option", { value: m }, m)));
    }
  }
  select.value = state.method;
}

function renderSitesTable() {
  const body = $("sites-table").tBodies[0];
  body.replaceChildren();
  if (!state.sites.length) {
    const tr = el("tr");
    tr.append(el("td", { colspan: 12, class: "dim" }, "no site has delivered a frame yet"));
    body.append(tr);
  }
  for (const s of state.sites) {
    const counts = splitCounts(s.counts);
    const lag = ingestLagSeconds(s);
    const tr = el("tr", { "data-site": s.id, class: s.id === state.site ? "selected" : null });
    const cell = (col, text, cls, title) => tr.append(el("td", { "data-col": col, class: cls, title }, text));
    cell("id", s.id, "mono");
    cell("frames", String(s.frames), "num");
    cell("newest", fmtTime(s.newest_frame), null, s.oldest_frame ? `oldest ${fmtTime(s.oldest_frame)}` : null);
    cell("cadence", s.cadence_min ? `${fmtMinutes(s.cadence_min)} min` : "–", "num");
    const gapCount = s.gap_count ?? s.gaps.length;
    const gapMore = gapCount > s.gaps.length ? ` (newest ${s.gaps.length} of ${gapCount})` : "";
    cell("gaps", String(gapCount), gapCount ? "num warn-text" : "num",
      gapCount ? s.gaps.map((t) => fmtTime(t)).join(", ") + gapMore : null);
    cell("mask", s.mask_version ?? "none (unmasked)", s.mask_version ? null : "dim");
    cell("model", s.model_version ?? "–", s.model_version ? "mono" : "dim");
    cell("issue", fmtTime(s.last_issue_time, false), null, s.last_issue_time ? fmtTime(s.last_issue_time) : null);
    const r = s.last_refusal;
    const past = refusalIsPast(s);  // forecasts issued since: history, not a warning
    cell("refusal", r ? `${r.reason} @ ${fmtTime(r.issue_time, false)}` : "–",
      r && !past ? "refusal" : "dim",
      r ? `${r.message}${past ? " (forecasts have been issued since)" : ""}` : null);
    cell("lag", fmtDuration(lag), `num lag ${lagClass(s, lag)}`, s.last_ingest_at ? `last ingest ${s.last_ingest_at}` : null);
    cell("accepted", String(counts.accepted), "num", counts.others.join(", ") || null);
    cell("quarantined", String(counts.quarantined), counts.quarantined ? "num bad-text" : "num",
      counts.reasons.join(", ") || null);
    tr.addEventListener("click", () => selectSite(s.id));
    body.append(tr);
  }
}

// Whether the site's last refusal is older than its last forecast (it recovered since).
function refusalIsPast(s) {
  const r = s.last_refusal;
  return Boolean(r && s.last_issue_time
    && new Date(s.last_issue_time).getTime() > new Date(r.issue_time).getTime());
}

function currentSite() {
  return state.sites.find((s) => s.id === state.site) || null;
}

function renderOverview() {
  const s = currentSite();
  $("overview-site").textContent = s ? s.id : "";
  if (!s) return;
  const counts = splitCounts(s.counts);
  $("kpi-newest").textContent = fmtTime(s.newest_frame, false);
  $("kpi-window").textContent = `${s.frames} frames · ${s.gap_count ?? s.gaps.length} gaps · ${s.cadence_min ? fmtMinutes(s.cadence_min) + " min" : "cadence ?"}`;
  $("kpi-issue").textContent = fmtTime(s.last_issue_time, false);
  const r = s.last_refusal;
  const refusal = $("kpi-refusal");
  refusal.textContent = r ? `refused ${fmtTime(r.issue_time, false)}: ${r.reason}` : "no refusal";
  refusal.classList.toggle("dim", refusalIsPast(s));
  refusal.title = r ? r.message : "";
  $("kpi-accepted").textContent = String(counts.accepted);
  $("kpi-archived").textContent = counts.others.join(", ") || "this site";
  const q = $("quarantine-count");
  q.textContent = String(counts.quarantined);
  q.className = "value " + (counts.quarantined ? "bad-text" : "");
  $("quarantine-sub").textContent = counts.reasons.join(", ") || "this site";
  const total = $("quarantine-total");
  if (state.quarantineTotal) {
    total.textContent = String(state.quarantineTotal.total);
    total.className = "value " + (state.quarantineTotal.total ? "warn-text" : "");
    $("quarantine-total-sub").textContent = state.quarantineTotal.reasons.join(", ") || "from /metrics, any site";
  } else {
    total.textContent = "–";
  }
  renderLag();
}

function renderLag() {
  const s = currentSite();
  const lag = ingestLagSeconds(s);
  const node = $("ingest-lag");
  node.textContent = fmtDuration(lag);
  node.className = "value " + (s ? lagClass(s, lag) : "");
  $("ingest-lag-sub").textContent =
    s && s.last_ingest_at ? `last ingest ${fmtClock(new Date(s.last_ingest_at))}` : "no ingest yet";
  for (const tr of $("sites-table").tBodies[0].rows) {
    const site = state.sites.find((x) => x.id === tr.dataset.site);
    const td = tr.querySelector('td[data-col="lag"]');
    if (site && td) {
      const secs = ingestLagSeconds(site);
      td.textContent = fmtDuration(secs);
      td.className = `num lag ${lagClass(site, secs)}`;
    }
  }
  const updated = $("last-updated");
  if (state.lastOk) {
    const ago = Math.round((Date.now() - state.lastOk.getTime()) / 1000);
    updated.textContent = `Last updated ${fmtClock(state.lastOk)} · ${ago} s ago`;
  }
}

function renderReadiness() {
  const badge = $("ready-badge"), checks = $("ready-checks");
  checks.replaceChildren();
  const r = state.ready;
  if (!r) { badge.className = "badge unknown"; badge.textContent = "READINESS ?"; return; }
  if (r.unreachable) { badge.className = "badge bad"; badge.textContent = "API DOWN"; badge.title = ""; return; }
  badge.className = "badge " + (r.ready ? "ok" : "warn");
  badge.textContent = r.ready ? "READY" : "NOT READY";
  badge.title = Object.entries(r.detail || {}).map(([k, v]) => `${k}: ${v}`).join("\n");
  for (const [name, ok] of Object.entries(r.checks || {})) {
    const detail = (r.detail || {})[name];
    checks.append(el("span", { class: ok ? "on" : "off", title: detail ? `${name}: ${detail}` : name },
      name.split("_")[0]));
  }
}

function showError(errors) {
  const banner = $("error-banner");
  if (!errors.length) { banner.hidden = true; return; }
  const messages = errors.map((e) => e.message);
  const what = errors.some((e) => !(e instanceof Unreachable) || e.network) ? "API unreachable" : "API error";
  const since = state.lastOk ? `Showing data from ${fmtClock(state.lastOk)}` : "No data loaded yet";
  banner.textContent = `${what} — ${messages.join("; ")}. ${since}; retrying every ${REFRESH_MS / 1000} s.`;
  banner.hidden = false;
}
