// The dashboard's settings, method styles and shared state.
// One of the dashboard's classic scripts (service/static/dashboard.html loads them in order;
// they share the page's global scope), no build step, nothing from a CDN.
"use strict";

"use strict";
const REFRESH_MS = 12000;        // API poll period
const FRAME_MS = 650;            // animation step
const REQUEST_TIMEOUT_MS = 8000;
const OBSERVED_FRAMES = 20;      // newest observed frames: the valid times a past forecast covers
const MAX_DRAWN_CELLS = 128;     // ask the API to thin larger grids (stride)
const METHODS = ["convlstm", "extrapolation", "extrapolation-inflow", "sprog", "steps", "persistence"];
const METHOD_STYLE = {
  convlstm: { colour: "#ffa94d", dash: "" },
  extrapolation: { colour: "#5ab0ff", dash: "" },
  "extrapolation-inflow": { colour: "#63e6be", dash: "6 2" },
  sprog: { colour: "#f783ac", dash: "" },
  steps: { colour: "#b197fc", dash: "2 3" },
  persistence: { colour: "#c3ccd6", dash: "5 4" },
};
// The maps' rain-rate colour scale, the one the PNG and GIF use (pysteps' radar scale),
// loaded from GET /v1/colour-scale: [{from_mmh, colour}] low to high; below the first: dry.
let SCALE = [];
const NO_DATA_RGB = [58, 64, 72];
const GRATICULE_COLOUR = "rgba(230, 235, 240, 0.6)";  // lon/lat lines over the maps

const state = {
  sites: [], site: null, method: "convlstm", period: "6", threshold: 2, issueOffset: "auto",
  nowcast: null, nowcastKey: null, nowcastError: null,
  observed: null, observedKey: null, observedError: null,
  verification: null, strides: {}, graticules: {}, lastOk: null, ready: null, quarantineTotal: null,
  frame: 0, playing: true, busy: false, again: false,
};
