// Helpers: DOM, formatting, lag classes and API access (timeouts, error details).
// One of the dashboard's classic scripts (service/static/dashboard.html loads them in order;
// they share the page's global scope), no build step, nothing from a CDN.
"use strict";

// ---------------------------------------------------------------- helpers
const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function hexRgb(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

const pad = (n) => String(n).padStart(2, "0");
function fmtTime(iso, withDate = true) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  const hm = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}Z`;
  return withDate ? `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${hm}` : hm;
}
function fmtClock(date) {
  return `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} UTC`;
}
function fmtDuration(seconds) {
  if (seconds === null || !isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  if (s < 172800) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}
function fmtMinutes(m) {
  return Number.isInteger(m) ? `${m}` : m.toFixed(1);
}

function ingestLagSeconds(site) {
  if (!site || !site.last_ingest_at) return null;
  return (Date.now() - new Date(site.last_ingest_at).getTime()) / 1000;
}
function lagClass(site, seconds) {
  if (seconds === null) return "dim";
  const cadence = (site.cadence_min || 6) * 60;
  return seconds <= 2 * cadence ? "ok-text" : seconds <= 6 * cadence ? "warn-text" : "bad-text";
}

function splitCounts(counts) {
  const out = { accepted: 0, quarantined: 0, reasons: [], others: [] };
  for (const [key, n] of Object.entries(counts || {})) {
    if (key === "accepted") out.accepted += n;
    else if (key.startsWith("quarantined")) {
      out.quarantined += n;
      out.reasons.push(`${key.split(":")[1] || "unknown"}: ${n}`);
    } else {
      out.others.push(`${key}: ${n}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------- API access
// no answer (network, timeout: `network`) or a 5xx: the API cannot serve the dashboard now
class Unreachable extends Error {
  constructor(message, network) { super(message); this.network = network; }
}

async function request(path, { acceptStatus = [] } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(path, { cache: "no-store", signal: controller.signal });
  } catch (err) {
    throw new Unreachable(`${path}: ${err.name === "AbortError" ? "timed out" : "no response"}`, true);
  } finally {
    clearTimeout(timer);
  }
  if (response.ok || acceptStatus.includes(response.status)) return response;
  let detail = response.statusText;
  try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
  if (response.status >= 500) throw new Unreachable(`${path}: HTTP ${response.status} ${detail}`, false);
  const err = new Error(detail);
  err.status = response.status;
  throw err;
}
const getJson = async (path, opts) => (await request(path, opts)).json();
