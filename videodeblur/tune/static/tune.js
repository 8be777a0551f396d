// videodeblur tune: the page. Plain JavaScript, no build step, nothing from outside.
//
// Every setting is sent as the --set strings of the command line ("psf.radius=3.5"), so what
// the page shows is what `videodeblur run --set ...` (or the saved config) renders. Each view
// request carries a sequence number and aborts the previous one: the newest request wins,
// an older image is never shown after a newer one.
"use strict";

const token = document.querySelector('meta[name="tune-token"]').content;
const $ = (id) => document.getElementById(id);
const state = {
  info: null, values: {}, frame: 0, view: "split", crop: "", split: 50,
  seq: { view: 0, original: 0 }, pending: { view: null, original: null }, urls: {},
  started: null, trackKey: null, track: null,
};
// Latencies from an input event to the new image's load event, in ms (read by the benchmark).
window.tuneLatencies = [];

function isEstimated(kind) { return kind === "auto" || kind.startsWith("auto-"); }

function applies(control) {
  if (!control.kinds) return true;
  return control.kinds.includes(state.values["psf.kind"]);
}

function settings({ psfOnly = false } = {}) {
  const out = [];
  for (const control of state.info.controls) {
    if (!applies(control)) continue;
    if (psfOnly && !control.key.startsWith("psf.")) continue;
    const value = state.values[control.key];
    if (value === undefined || value === null) continue;
    out.push(`${control.key}=${value}`);
  }
  return out;
}

function query(params, sets) {
  const search = new URLSearchParams(params);
  for (const item of sets) search.append("set", item);
  return search.toString();
}

function showError(text) { $("error").textContent = text || ""; }

async function load(slot, img, params) {
  const sequence = ++state.seq[slot];
  if (state.pending[slot]) state.pending[slot].abort();
  const controller = new AbortController();
  state.pending[slot] = controller;
  const url = "/api/image?" + query({ ...params, seq: sequence }, settings());
  let response;
  try {
    response = await fetch(url, { signal: controller.signal, credentials: "same-origin" });
  } catch (error) {
    if (error.name !== "AbortError") showError(`cannot reach the server: ${error.message}`);
    return;
  }
  if (sequence !== state.seq[slot]) return;  // a newer request was made meanwhile
  if (response.status === 409) return;
  if (!response.ok) {
    let message = `error ${response.status}`;
    try { message = (await response.json()).error || message; } catch (ignored) { /* not JSON, or aborted */ }
    if (sequence !== state.seq[slot]) return;
    showError(message);
    return;
  }
  let blob;
  try {
    blob = await response.blob();  // aborted by a newer request while the body arrives
  } catch (error) {
    if (error.name !== "AbortError") showError(`cannot read the image: ${error.message}`);
    return;
  }
  if (sequence !== state.seq[slot]) return;
  showError("");
  if (slot === "view") $("label").textContent = response.headers.get("X-Label") || "";
  const previous = state.urls[slot];
  state.urls[slot] = URL.createObjectURL(blob);
  img.dataset.seq = String(sequence);
  img.src = state.urls[slot];
  if (previous) setTimeout(() => URL.revokeObjectURL(previous), 1000);
}

function imageParams(view) {
  const params = { frame: state.frame, view };
  if (state.crop) params.crop = state.crop;
  return params;
}

function refreshView(started) {
  state.started = started || performance.now();
  load("view", $("restored"), imageParams(state.view === "diff" ? "diff" : "restored"));
  const png = new URLSearchParams(imageParams("restored"));
  png.set("format", "png");
  for (const item of settings()) png.append("set", item);
  $("png").href = "/api/image?" + png.toString();
}

function refreshOriginal() {
  if (state.view === "split" || state.view === "side") load("original", $("original"), imageParams("original"));
}

function refreshAll(started) { refreshOriginal(); refreshView(started); }

$("restored").addEventListener("load", () => {
  if (state.started !== null) {
    window.tuneLatencies.push(performance.now() - state.started);
    state.started = null;
  }
});

// -- the frame scrubber ------------------------------------------------------------------

function frameLabel() {
  const info = state.info;
  const fps = info.fps || 0;
  const time = fps ? (state.frame / fps).toFixed(3) + " s" : "";
  $("frame-label").textContent = `frame ${state.frame} / ${info.frame_count - 1}  ${time}`;
}

function goTo(frame, started) {
  const last = state.info.frame_count - 1;
  state.frame = Math.max(0, Math.min(last, Math.round(frame)));
  $("frame").value = String(state.frame);
  frameLabel();
  drawTrack();
  refreshAll(started);
}

$("frame").addEventListener("input", (event) => goTo(Number(event.target.value), event.timeStamp));
$("previous").addEventListener("click", (event) => goTo(state.frame - 1, event.timeStamp));
$("next").addEventListener("click", (event) => goTo(state.frame + 1, event.timeStamp));

// -- controls, from the registry's table ---------------------------------------------------

function controlId(key) { return "c-" + key.replace(/[^a-z0-9]+/gi, "-"); }

function changed(key, value, event) {
  state.values[key] = value;
  if (key === "psf.kind") updateVisibility();
  if (key.startsWith("psf.")) refreshTrack();
  refreshView(event ? event.timeStamp : undefined);
}

function sliderAndBox(control) {
  // A slider labelled by the control's key and a number box beside it.
  const range = document.createElement("input");
  range.type = "range";
  range.id = controlId(control.key);
  range.min = control.min; range.max = control.max; range.step = control.step;
  const number = document.createElement("input");
  number.type = "number";
  number.setAttribute("aria-label", `${control.key} value`);
  return { range, number };
}

function numberControl(control, box) {
  const { range, number } = sliderAndBox(control);
  number.step = control.step;
  if (control.bound_min !== null && control.bound_min !== undefined) number.min = control.bound_min;
  if (control.bound_max !== null && control.bound_max !== undefined) number.max = control.bound_max;
  const value = state.values[control.key] ?? control.default;
  state.values[control.key] = value;
  range.value = value; number.value = value;
  range.addEventListener("input", (event) => { number.value = range.value; changed(control.key, Number(range.value), event); });
  number.addEventListener("change", (event) => { range.value = number.value; changed(control.key, Number(number.value), event); });
  box.append(range, " ", number, control.unit ? ` ${control.unit}` : "");
}

function regularisationControl(control, box) {
  // "auto", or a value on a log-scale slider.
  const auto = document.createElement("input");
  auto.type = "checkbox";
  auto.id = controlId(control.key) + "-auto";
  const autoLabel = document.createElement("label");
  autoLabel.append(auto, " auto");
  const { range, number } = sliderAndBox(control);
  number.step = "any"; number.min = "0";
  const start = state.values[control.key];
  const isAuto = start === "auto" || start === undefined;
  auto.checked = isAuto;
  const value = isAuto ? 0.01 : Number(start);
  range.value = Math.log10(value); number.value = value;
  range.disabled = number.disabled = isAuto;
  state.values[control.key] = isAuto ? "auto" : value;
  auto.addEventListener("change", (event) => {
    range.disabled = number.disabled = auto.checked;
    changed(control.key, auto.checked ? "auto" : Number(number.value), event);
  });
  range.addEventListener("input", (event) => {
    const v = Number(Math.pow(10, Number(range.value)).toPrecision(3));
    number.value = v;
    changed(control.key, v, event);
  });
  number.addEventListener("change", (event) => {
    range.value = Math.log10(Number(number.value));
    changed(control.key, Number(number.value), event);
  });
  box.append(autoLabel, " ", range, " ", number);
}

function choiceControl(control, box) {
  const select = document.createElement("select");
  select.id = controlId(control.key);
  for (const choice of control.choices) {
    const option = document.createElement("option");
    option.value = option.textContent = choice;
    select.append(option);
  }
  select.value = state.values[control.key] ?? control.choices[0];
  state.values[control.key] = select.value;
  select.addEventListener("change", (event) => changed(control.key, select.value, event));
  box.append(select);
}

function toggleControl(control, box) {
  const check = document.createElement("input");
  check.type = "checkbox";
  check.id = controlId(control.key);
  check.checked = Boolean(state.values[control.key] ?? control.default);
  state.values[control.key] = check.checked;
  check.addEventListener("change", (event) => changed(control.key, check.checked, event));
  box.append(check);
}

function buildControls() {
  const fieldset = $("controls");
  for (const control of state.info.controls) {
    const box = document.createElement("div");
    box.className = "control";
    box.dataset.key = control.key;
    const label = document.createElement("label");
    label.htmlFor = controlId(control.key);
    label.textContent = control.key;
    box.append(label);
    ({ number: numberControl, regularisation: regularisationControl, choice: choiceControl,
       toggle: toggleControl })[control.type](control, box);
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.textContent = control.description;
    box.append(hint);
    fieldset.append(box);
  }
  updateVisibility();
}

function updateVisibility() {
  for (const box of document.querySelectorAll(".control")) {
    const control = state.info.controls.find((c) => c.key === box.dataset.key);
    box.hidden = !applies(control);
  }
}

// -- the view: split, side by side, difference, restored; zoom and crop -----------------------

$("view").addEventListener("change", (event) => {
  state.view = $("view").value;
  $("stage").className = state.view;
  refreshAll(event.timeStamp);
});

function placeDivider() {
  $("restored").style.clipPath = state.view === "split" ? `inset(0 0 0 ${state.split}%)` : "";
  $("divider").style.left = `${state.split}%`;
}

let dragging = false;
$("divider").addEventListener("pointerdown", (event) => {
  dragging = true;
  $("divider").setPointerCapture(event.pointerId);
  event.preventDefault();
});
$("divider").addEventListener("pointermove", (event) => {
  if (!dragging) return;
  const box = $("stage").getBoundingClientRect();
  state.split = Math.max(0, Math.min(100, ((event.clientX - box.left) / box.width) * 100));
  placeDivider();
});
$("divider").addEventListener("pointerup", () => { dragging = false; });
$("divider").addEventListener("keydown", (event) => {
  const step = event.key === "ArrowLeft" ? -2 : event.key === "ArrowRight" ? 2 : 0;
  if (step) { state.split = Math.max(0, Math.min(100, state.split + step)); placeDivider(); event.preventDefault(); }
});

function setZoom(on, clientX, clientY) {
  const viewport = $("viewport");
  const img = $("restored");
  const before = img.getBoundingClientRect();
  const fx = clientX !== undefined ? (clientX - before.left) / before.width : 0.5;
  const fy = clientY !== undefined ? (clientY - before.top) / before.height : 0.5;
  viewport.classList.toggle("fit", !on);
  $("zoom").checked = on;
  if (on) {
    const after = img.getBoundingClientRect();
    viewport.scrollLeft = fx * after.width - viewport.clientWidth / 2;
    viewport.scrollTop = fy * after.height - viewport.clientHeight / 2;
  }
}

$("zoom").addEventListener("change", () => setZoom($("zoom").checked));
$("stage").addEventListener("click", (event) => {
  if (event.target === $("divider")) return;
  setZoom($("viewport").classList.contains("fit"), event.clientX, event.clientY);
});

$("crop").addEventListener("change", (event) => {
  state.crop = $("crop").value.trim();
  refreshAll(event.timeStamp);
});

$("crop-view").addEventListener("click", (event) => {
  // The part of the frame the viewport shows, in frame pixels.
  const viewport = $("viewport");
  const img = $("restored");
  const scale = img.naturalWidth / img.getBoundingClientRect().width;
  const [x0, y0] = state.crop ? state.crop.split(",").map(Number) : [0, 0];
  const x = Math.round(x0 + viewport.scrollLeft * scale), y = Math.round(y0 + viewport.scrollTop * scale);
  const w = Math.round(Math.min(img.naturalWidth, viewport.clientWidth * scale));
  const h = Math.round(Math.min(img.naturalHeight, viewport.clientHeight * scale));
  state.crop = `${x},${y},${w},${h}`;
  $("crop").value = state.crop;
  setZoom(false);
  refreshAll(event.timeStamp);
});

// -- the estimated track ---------------------------------------------------------------------

async function refreshTrack() {
  const kind = state.values["psf.kind"];
  if (!isEstimated(kind)) {
    $("track").hidden = true; $("track-status").textContent = ""; state.track = null; state.trackKey = null;
    return;
  }
  const key = settings({ psfOnly: true }).join("&");
  if (key === state.trackKey) return;
  state.trackKey = key; state.track = null;
  $("track").hidden = false;
  while (state.trackKey === key) {
    let body;
    try {
      const response = await fetch("/api/track?" + query({}, settings({ psfOnly: true })), { credentials: "same-origin" });
      body = await response.json();
      if (!response.ok) { $("track-status").textContent = body.error; return; }
    } catch (error) { $("track-status").textContent = `track: ${error.message}`; return; }
    if (state.trackKey !== key) return;
    if (body.state === "done") {
      state.track = body.rows;
      $("track-status").textContent = "estimated blur: dots raw, line smoothed (applied), bars confidence; click to go to a frame";
      drawTrack();
      return;
    }
    if (body.state === "error") { $("track-status").textContent = `track: ${body.error}`; return; }
    $("track-status").textContent = `estimating the blur of every frame: ${body.done} / ${body.total}`;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function drawTrack() {
  const canvas = $("track");
  if (canvas.hidden) return;
  const context = canvas.getContext("2d");
  const width = canvas.width, height = canvas.height, plot = height - 20;
  context.fillStyle = "#111"; context.fillRect(0, 0, width, height);
  const rows = state.track || [];
  const count = state.info.frame_count;
  const x = (frame) => (count > 1 ? (frame / (count - 1)) * (width - 1) : 0);
  const values = rows.flatMap((r) => [r.value, r.raw]).filter((v) => v !== null);
  const top = Math.max(1, ...values);
  const y = (v) => plot - (v / top) * (plot - 4);
  context.fillStyle = "#4a6";
  for (const row of rows) {
    if (row.confidence !== null) context.fillRect(x(row.frame), height - row.confidence * 16, 1.5, row.confidence * 16);
  }
  context.fillStyle = "#999";
  for (const row of rows) if (row.raw !== null) context.fillRect(x(row.frame) - 1, y(row.raw) - 1, 3, 3);
  context.strokeStyle = "#6af"; context.lineWidth = 2; context.beginPath();
  let drawing = false;
  for (const row of rows) {
    if (row.value === null) { drawing = false; continue; }
    if (drawing) context.lineTo(x(row.frame), y(row.value)); else context.moveTo(x(row.frame), y(row.value));
    drawing = true;
  }
  context.stroke();
  context.fillStyle = "#fff"; context.fillRect(x(state.frame), 0, 1, height);
  context.font = "12px sans-serif"; context.fillText(`max ${top.toFixed(1)} px`, 4, 12);
}

$("track").addEventListener("click", (event) => {
  const box = $("track").getBoundingClientRect();
  goTo(((event.clientX - box.left) / box.width) * (state.info.frame_count - 1), event.timeStamp);
});

// -- saving ----------------------------------------------------------------------------------

$("save").addEventListener("click", async () => {
  let toConfig = false;
  if (!state.info.save_path) {
    if (!state.info.config_path) {
      $("save-result").textContent = "Start videodeblur tune with --save FILE.toml to save the config.";
      return;
    }
    if (!window.confirm(`Overwrite ${state.info.config_path} with these settings?`)) return;
    toConfig = true;
  }
  const response = await fetch("/api/save", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Tune-Token": token },
    body: JSON.stringify({ settings: settings(), to_config: toConfig }),
  });
  const body = await response.json();
  if (!response.ok) { $("save-result").textContent = ""; showError(body.error); return; }
  showError("");
  $("save-result").textContent = `saved ${body.path}; to restore the whole clip with it, run:`;
  $("command").textContent = body.command;
});

// -- start -----------------------------------------------------------------------------------

async function start() {
  const response = await fetch("/api/session", { credentials: "same-origin" });
  state.info = await response.json();
  state.values = { ...state.info.values };
  $("input-name").textContent = state.info.input;
  document.title = `videodeblur tune: ${state.info.input}`;
  $("frame").max = String(state.info.frame_count - 1);
  buildControls();
  placeDivider();
  frameLabel();
  if (window.location.search.includes("token=")) window.history.replaceState(null, "", "/");  // keep it off the screen
  refreshTrack();
  refreshAll();
  document.body.dataset.ready = "true";
}

new MutationObserver(placeDivider).observe($("stage"), { attributes: true, attributeFilter: ["class"] });
start();
