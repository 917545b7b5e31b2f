// styleforge studio: the page over the JSON API of docs/studio.md. No library, nothing from outside.
"use strict";

const $ = (id) => document.getElementById(id);
const FINISHED = new Set(["done", "stopped", "failed"]);
const COLORS = ["#222222", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"];

const state = {
  info: null,
  content: null, // File
  styles: [], // {file, name, weight, mask}
  from: null, // an earlier run whose pictures are reused: {id, content, styles}
  run: null, // the run shown: {id, state, total}
  source: null, // its EventSource
  series: new Map(), // term -> [[iteration, value], ...]
  stages: [], // iterations where a stage began
  total: 0,
  imageVersion: 0,
  imageLoading: false,
  drawPending: false,
};

// ---------------------------------------------------------------------------------------------- API

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
  if (!response.ok) {
    const error = new Error((data && data.error) || `${response.status} ${response.statusText}`);
    error.field = data && data.field;
    error.status = response.status;
    throw error;
  }
  return data;
}

// -------------------------------------------------------------------------------------------- setup

async function start() {
  state.info = await api("/api/info");
  const info = state.info;
  $("server-note").textContent = `styleforge ${info.version}`;
  fillForm(info.defaults);
  for (const [name, values] of Object.entries(info.choices)) {
    const select = document.querySelector(`#knobs select[name=${name}]`);
    if (select) setChoices(select, values, info.defaults[name]);
  }
  for (const name of info.choices.optimizer) {
    const option = document.createElement("option");
    option.value = name;
    $("optimizers").append(option);
  }
  // The model chooser appears only where the server has models (studio --models).
  if (Array.isArray(info.models) && info.models.length) {
    const select = document.querySelector("#knobs select[name=model]");
    for (const name of info.models) select.append(new Option(name, name));
    $("model-row").hidden = false;
  }
  if (info.preview) {
    $("form-part").hidden = true;
    $("run").hidden = true;
    $("preview-note").hidden = false;
  }
  wireInputs();
  draw();
  await refreshGallery();
  const match = /run=(\d+)/.exec(location.hash);
  if (match) attach(match[1]);
}

function setChoices(select, values, chosen) {
  select.replaceChildren(...values.map((v) => new Option(v, v, false, v === chosen)));
}

function fillForm(options) {
  const form = $("knobs");
  for (const element of form.elements) {
    if (!element.name || !(element.name in options)) continue;
    const value = options[element.name];
    if (element.type === "checkbox") element.checked = Boolean(value);
    else if (element.name === "optimizer") element.value = (value || []).join(", ");
    else if (element.tagName === "SELECT" && ![...element.options].some((o) => o.value === String(value))) continue;
    else element.value = value === null || value === undefined ? "" : value;
  }
}

function wireInputs() {
  $("content-file").addEventListener("change", (e) => { if (e.target.files[0]) setContent(e.target.files[0]); });
  $("style-files").addEventListener("change", (e) => { addStyles(e.target.files); e.target.value = ""; });
  dropZone($("content-drop"), (files) => files[0] && setContent(files[0]));
  dropZone($("style-drop"), addStyles);
  $("run").addEventListener("click", submit);
  $("stop").addEventListener("click", stop);
}

function dropZone(zone, take) {
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = [...e.dataTransfer.files].filter((f) => f.type.startsWith("image/") || !f.type);
    if (files.length) take(files);
  });
}

function thumbnail(file, img) {
  const url = URL.createObjectURL(file);
  img.onload = () => URL.revokeObjectURL(url);
  img.src = url;
  img.hidden = false;
}

function setContent(file) {
  state.content = file;
  $("content-name").textContent = file.name;
  thumbnail(file, $("content-thumb"));
  showReuse();
}

function addStyles(files) {
  state.styles = state.styles.filter((s) => s.file); // new pictures replace an earlier run's styles
  for (const file of files) state.styles.push({ file, name: file.name, weight: 1, mask: null });
  renderStyles();
  showReuse();
}

function renderStyles() {
  const list = $("style-list");
  list.replaceChildren();
  state.styles.forEach((style, index) => {
    const item = document.createElement("li");
    const img = document.createElement("img");
    img.className = "thumb";
    img.alt = "";
    if (style.file) thumbnail(style.file, img);
    else if (style.url) img.src = style.url;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `${index + 1}. ${style.name}`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "small";
    remove.textContent = "remove";
    remove.setAttribute("aria-label", `remove style ${style.name}`);
    remove.addEventListener("click", () => { state.styles.splice(index, 1); renderStyles(); });
    const weight = document.createElement("label");
    weight.className = "weight";
    const slider = document.createElement("input");
    slider.type = "range";
    slider.min = "0.05";
    slider.max = "1";
    slider.step = "0.05";
    slider.value = style.weight;
    slider.className = "blend";
    slider.setAttribute("aria-label", `blend weight of ${style.name}`);
    const shown = document.createElement("output");
    shown.value = Number(style.weight).toFixed(2);
    slider.addEventListener("input", () => { style.weight = Number(slider.value); shown.value = style.weight.toFixed(2); });
    weight.append(slider, shown);
    const mask = document.createElement("label");
    mask.className = "mask";
    mask.textContent = "mask";
    mask.title = "optional: a grey picture, white where this style goes";
    const maskInput = document.createElement("input");
    maskInput.type = "file";
    maskInput.accept = "image/*";
    maskInput.className = "mask-file";
    maskInput.addEventListener("change", () => { style.mask = maskInput.files[0] || null; });
    mask.append(maskInput);
    item.append(img, name, remove, weight, mask);
    list.append(item);
  });
}

function showReuse() {
  const note = $("reuse-note");
  const from = state.from;
  const parts = [];
  if (from && !state.content) parts.push(`content ${from.content}`);
  if (from && !state.styles.some((s) => s.file)) parts.push(`styles ${from.styles.join(", ")}`);
  note.hidden = !parts.length;
  note.textContent = parts.length ? `From run ${from.id}: ${parts.join("; ")} (choose new pictures to replace them).` : "";
}

// ------------------------------------------------------------------------------------------- a run

function options() {
  const form = $("knobs");
  const out = {};
  for (const element of form.elements) {
    const name = element.name;
    if (!name || name === "more" || name === "model") continue;
    element.classList.remove("invalid");
    if (element.type === "checkbox") out[name] = element.checked;
    else if (name === "optimizer") out[name] = element.value.split(",").map((s) => s.trim()).filter(Boolean);
    else if (element.type === "number") {
      if (element.value.trim() === "") { if (name === "style_weight") out[name] = null; continue; }
      out[name] = Number(element.value);
    } else out[name] = element.value;
  }
  const more = form.elements.more.value.trim();
  if (more) {
    let extra;
    try { extra = JSON.parse(more); } catch (e) { throw Object.assign(new Error(`more options: not JSON (${e.message})`), { field: "more" }); }
    Object.assign(out, extra);
  }
  return out;
}

async function submit() {
  $("form-error").textContent = "";
  for (const element of document.querySelectorAll(".invalid")) element.classList.remove("invalid");
  const body = new FormData();
  try {
    body.append("options", JSON.stringify(options()));
  } catch (e) {
    return showError(e);
  }
  const fresh = state.styles.filter((s) => s.file);
  if (state.content) body.append("content", state.content, state.content.name);
  for (const style of fresh) body.append("style", style.file, style.name);
  const styles = fresh.length ? fresh : state.styles;
  if (styles.length) body.append("blend", JSON.stringify(styles.map((s) => s.weight)));
  styles.forEach((style, i) => { if (style.mask) body.append(`mask_${i + 1}`, style.mask, style.mask.name); });
  if (state.from) body.append("from", state.from.id);
  const model = $("knobs").elements.model.value;
  if (model) body.append("model", model);
  $("run").disabled = true;
  try {
    const created = await api("/api/runs", { method: "POST", body });
    attach(created.id);
    refreshGallery();
  } catch (e) {
    showError(e);
  } finally {
    $("run").disabled = false;
  }
}

function showError(error) {
  $("form-error").textContent = error.message;
  const field = error.field && document.querySelector(`#knobs [name=${CSS.escape(error.field)}]`);
  if (field) field.classList.add("invalid");
  else if (error.field === "content") $("content-drop").classList.add("invalid");
  else if (error.field === "style") $("style-drop").classList.add("invalid");
}

async function stop() {
  if (!state.run) return;
  $("stop").disabled = true;
  try { await api(`/api/runs/${state.run.id}/stop`, { method: "POST" }); } catch (e) { showError(e); }
}

function attach(id) {
  if (state.source) state.source.close();
  state.run = { id: String(id), state: "queued", total: 0 };
  state.series = new Map();
  state.stages = [];
  state.total = 0;
  state.imageVersion = 0;
  $("picture").hidden = true;
  $("picture").removeAttribute("src");
  $("download").hidden = true;
  $("notices").textContent = "";
  $("status").textContent = `Run ${id}: waiting for its first event…`;
  draw();
  markCurrent();
  const source = new EventSource(`/api/runs/${id}/events`);
  state.source = source;
  source.onmessage = (message) => handle(JSON.parse(message.data));
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED || (state.run && FINISHED.has(state.run.state))) source.close();
    if (state.info && state.info.preview && !FINISHED.has(state.run.state)) {
      $("status").textContent += " — the command has ended (the preview ends with it).";
      source.close();
    }
  };
}

function handle(event) {
  const run = state.run;
  switch (event.type) {
    case "state":
      run.state = event.state;
      if (FINISHED.has(event.state)) finished(event);
      else showProgress(event.state === "queued" && event.position ? `queued, number ${event.position} in line` : event.state);
      $("stop").disabled = FINISHED.has(event.state);
      break;
    case "stage":
      state.stages.push(event.first_iteration);
      state.total = event.total_iterations;
      break;
    case "progress":
      state.total = event.total;
      run.iteration = event.iteration;
      run.losses = event.losses;
      for (const [name, value] of Object.entries(event.losses)) {
        if (name.endsWith(".raw")) continue;
        if (!state.series.has(name)) state.series.set(name, []);
        state.series.get(name).push([event.iteration, value]);
      }
      showProgress("running");
      scheduleDraw();
      break;
    case "image":
      state.imageVersion = Math.max(state.imageVersion, event.version);
      loadPicture();
      break;
    case "notice":
      $("notices").textContent = `note: ${event.message}`;
      break;
    case "download":
      $("notices").textContent = `downloading ${event.what}…`;
      break;
    case "stage_end":
      if (event.reason !== "completed") $("notices").textContent = `stage ${event.index + 1} ${event.reason}: ${event.detail}`;
      break;
  }
}

function showProgress(words) {
  const run = state.run;
  const total = state.total || run.total || 0;
  const loss = run.losses ? ` · loss ${run.losses.total.toPrecision(4)}` : "";
  const at = run.iteration ? ` · iteration ${run.iteration}${total ? ` of ${total}` : ""}` : "";
  $("status").textContent = `Run ${run.id}: ${words}${at}${loss}`;
  $("progress").max = total || 1;
  $("progress").value = run.iteration || 0;
}

function finished(event) {
  const run = state.run;
  const text = event.state === "failed" ? `failed: ${event.error}` : `${event.state}${event.detail ? ` (${event.detail})` : ""}`;
  showProgress(text);
  $("status").className = `status state-${event.state}`;
  if (event.state === "failed" && event.field) showError({ message: event.error, field: event.field });
  if (event.image) {
    state.imageVersion = Math.max(state.imageVersion, event.image);
    loadPicture();
    const link = $("download");
    link.href = `/api/runs/${run.id}/image?download=1`;
    link.hidden = state.info.preview; // a --preview command writes its own file, and its server ends with it
  }
  if (state.source) state.source.close();
  refreshGallery();
}

// The picture: fetched when a newer one is announced and none is loading (every few iterations at most).
function loadPicture() {
  if (state.imageLoading || !state.run) return;
  const img = $("picture");
  const version = state.imageVersion;
  if (Number(img.dataset.version || 0) >= version && img.dataset.run === state.run.id) return;
  state.imageLoading = true;
  const next = new Image();
  next.onload = () => {
    img.src = next.src;
    img.dataset.version = version;
    img.dataset.run = state.run.id;
    img.hidden = false;
    state.imageLoading = false;
    showOnCard(state.run.id, next.src);
    if (state.imageVersion > version) setTimeout(loadPicture, 100);
  };
  next.onerror = () => { state.imageLoading = false; };
  next.src = `/api/runs/${state.run.id}/image?v=${version}`;
}

// ------------------------------------------------------------------------------------------- chart

function scheduleDraw() {
  if (state.drawPending) return;
  state.drawPending = true;
  requestAnimationFrame(() => { state.drawPending = false; draw(); });
}

// Each weighted term and the total against the iteration, log scale, dotted lines where stages begin.
function draw() {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  const left = 52, right = 10, top = 10, bottom = 26;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  let lo = Infinity, hi = -Infinity, last = 1, points = 0;
  for (const values of state.series.values()) {
    for (const [x, y] of values) {
      if (y > 0 && Number.isFinite(y)) { lo = Math.min(lo, y); hi = Math.max(hi, y); }
      last = Math.max(last, x);
    }
  }
  // The axis grows with the run (a quarter ahead of it) up to the iterations planned.
  const xMax = Math.max(2, last, Math.min(state.total || Infinity, Math.max(last * 1.25, 10)));
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#6b6760";
  if (!Number.isFinite(lo)) {
    ctx.fillText("the loss curves appear here while a run goes", left, H / 2);
    canvas.dataset.points = "0";
    renderLegend();
    return;
  }
  let y0 = Math.floor(Math.log10(lo)), y1 = Math.ceil(Math.log10(hi));
  if (y1 <= y0) y1 = y0 + 1;
  const px = (x) => left + ((x - 1) / (xMax - 1)) * (W - left - right);
  const py = (y) => top + (1 - (Math.log10(y) - y0) / (y1 - y0)) * (H - top - bottom);
  ctx.strokeStyle = "#e6e2db";
  ctx.lineWidth = 1;
  const step = Math.max(1, Math.ceil((y1 - y0) / 6));
  for (let e = y0; e <= y1; e += step) {
    const y = py(10 ** e);
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(W - right, y); ctx.stroke();
    ctx.fillText(`1e${e}`, 6, y + 4);
  }
  for (const x of [1, Math.round(xMax / 2), Math.round(xMax)]) ctx.fillText(String(x), Math.min(px(x) - 4, W - right - 24), H - 8);
  ctx.setLineDash([3, 3]);
  for (const x of state.stages.slice(1)) { ctx.beginPath(); ctx.moveTo(px(x), top); ctx.lineTo(px(x), H - bottom); ctx.stroke(); }
  ctx.setLineDash([]);
  let index = 0;
  for (const [name, values] of state.series) {
    ctx.strokeStyle = COLORS[index++ % COLORS.length];
    ctx.lineWidth = name === "total" ? 2 : 1.3;
    ctx.beginPath();
    let pen = false;
    for (const [x, y] of values) {
      if (!(y > 0 && Number.isFinite(y))) { pen = false; continue; }
      if (pen) ctx.lineTo(px(x), py(y)); else ctx.moveTo(px(x), py(y));
      pen = true;
      points++;
    }
    ctx.stroke();
  }
  canvas.dataset.points = String(points);
  renderLegend();
}

function renderLegend() {
  const legend = $("legend");
  legend.replaceChildren();
  let index = 0;
  for (const [name, values] of state.series) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = COLORS[index++ % COLORS.length];
    const last = values.length ? values[values.length - 1][1] : NaN;
    item.append(swatch, `${name} ${Number.isFinite(last) ? last.toPrecision(3) : "–"}`);
    legend.append(item);
  }
}

// ----------------------------------------------------------------------------------------- gallery

async function refreshGallery() {
  let runs;
  try { runs = await api("/api/runs"); } catch (e) { return; }
  const gallery = $("gallery");
  gallery.replaceChildren();
  for (const run of runs.slice().reverse()) gallery.append(card(run));
  markCurrent();
}

function card(run) {
  const box = document.createElement("article");
  box.className = "card";
  box.dataset.run = run.id;
  if (run.image) {
    const img = document.createElement("img");
    img.src = `/api/runs/${run.id}/image?v=${run.image}`;
    img.alt = `result of run ${run.id}`;
    box.append(img);
  } else {
    const empty = document.createElement("div");
    empty.className = "empty";
    empty.textContent = "no picture";
    box.append(empty);
  }
  const title = document.createElement("strong");
  title.className = `state-${run.state}`;
  title.textContent = `#${run.id} ${run.state}`;
  const what = document.createElement("div");
  what.className = "what";
  const o = run.options;
  const knobs = [`${o.size} px`, `${o.iterations} it`, o.optimizer.join("+"), o.style_loss, `cw ${o.content_weight}`];
  if (o.style_weight !== null) knobs.push(`sw ${o.style_weight}`);
  if (o.preserve_colors) knobs.push("colours kept");
  what.textContent = `${run.content} × ${run.styles.join(", ")} · ${knobs.join(" · ")}`;
  const buttons = document.createElement("div");
  buttons.className = "buttons";
  buttons.append(button("show", () => attach(run.id)));
  if (!run.external) buttons.append(button("use settings", () => useSettings(run)));
  if (run.image && !run.external) {
    const link = document.createElement("a");
    link.className = "button small";
    link.href = `/api/runs/${run.id}/image?download=1`;
    link.textContent = "PNG";
    link.setAttribute("download", "");
    buttons.append(link);
  }
  box.append(title, what, buttons);
  return box;
}

function button(text, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "small";
  b.textContent = text;
  b.addEventListener("click", action);
  return b;
}

// The run's card among the results shows its latest picture too.
function showOnCard(id, src) {
  const box = document.querySelector(`.card[data-run="${id}"]`);
  if (!box) return;
  let img = box.querySelector("img");
  if (!img) {
    img = document.createElement("img");
    img.alt = `result of run ${id}`;
    box.querySelector(".empty").replaceWith(img);
  }
  img.src = src;
}

function markCurrent() {
  for (const element of document.querySelectorAll(".card")) {
    element.classList.toggle("current", Boolean(state.run && element.dataset.run === state.run.id));
  }
}

// Start again from an earlier run: its options in the form, its pictures reused unless replaced.
function useSettings(run) {
  fillForm({ ...state.info.defaults, ...run.options });
  const defaults = state.info.defaults;
  const known = new Set([...$("knobs").elements].map((e) => e.name));
  const rest = {};
  for (const [name, value] of Object.entries(run.options)) {
    if (!known.has(name) && JSON.stringify(value) !== JSON.stringify(defaults[name])) rest[name] = value;
  }
  $("knobs").elements.more.value = Object.keys(rest).length ? JSON.stringify(rest) : "";
  state.from = { id: run.id, content: run.content, styles: run.styles };
  state.content = null;
  $("content-name").textContent = `${run.content} (run ${run.id})`;
  $("content-thumb").src = `/api/runs/${run.id}/inputs/content`;
  $("content-thumb").hidden = false;
  state.styles = run.styles.map((name, i) => ({
    file: null,
    url: `/api/runs/${run.id}/inputs/style_${i + 1}`,
    name,
    weight: run.blend[i] === null ? 1 : run.blend[i],
    mask: null,
  }));
  renderStyles();
  showReuse();
  $("form-error").textContent = "";
}

start().catch((e) => { $("form-error").textContent = `the studio did not answer: ${e.message}`; });
