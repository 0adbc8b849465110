// makemore serve: the page. It talks to the JSON API only (GET /api/runs; POST /api/sample, /api/score,
// /api/next, /api/inside) and draws its charts itself in SVG: nothing is loaded from anywhere else.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const state = { runs: [], results: [], run: null, samples: [], nextCall: null, nextTimer: 0 };

// ------------------------------------------------------------------ helpers

async function api(path, body, signal) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
  };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: { message: `HTTP ${response.status}` } }));
  if (!response.ok) {
    const e = data.error || {};
    const err = new Error(e.message + (e.allowed && !e.message.includes(e.allowed) ? ` (allowed: ${e.allowed})` : ""));
    err.field = e.field;
    throw err;
  }
  return data;
}

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function s(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(id, error) {
  const p = $(id);
  if (!error) { p.hidden = true; p.textContent = ""; return; }
  p.hidden = false;
  p.textContent = error.message || String(error);
}

const fmt = (x, d = 4) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
const shown = (c) => (c === " " ? "␠" : c);  // a space must be visible in a bar's label
const numberOr = (id, fallback) => { const v = $(id).value.trim(); return v === "" ? fallback : Number(v); };
const lines = (id) => $(id).value.split("\n").map((l) => l.replace(/\r$/, "")).filter((l) => l.trim() !== "");

// ------------------------------------------------------------------ runs

async function loadRuns() {
  try {
    const data = await api("/api/runs");
    state.runs = data.runs;
    state.results = data.results || [];
  } catch (e) { showError("load-error", e); return; }
  const select = $("run-select");
  for (const r of state.runs) {
    const val = r.metrics.val_nll === null ? "" : ` · val ${fmt(r.metrics.val_nll)}`;
    select.append(h("option", { value: r.id, text: `${r.id} (${r.model}${val})` }));
  }
  const wanted = decodeURIComponent(location.hash.replace(/^#run=/, ""));
  if (state.runs.some((r) => r.id === wanted)) select.value = wanted;
  select.addEventListener("change", () => chooseRun(select.value));
  if (state.runs.length) chooseRun(select.value);
}

function chooseRun(id) {
  state.run = state.runs.find((r) => r.id === id);
  history.replaceState(null, "", `#run=${encodeURIComponent(id)}`);
  renderCard(state.run);
  $("s-max-len").placeholder = `auto (${state.run.max_len})`;
  $("s-novel").disabled = !state.run.training_file;
  renderLabels(state.run);
  refreshNext();
  loadInside();
  drawResults();
}

function renderCard(r) {
  const card = $("run-card");
  card.replaceChildren();
  const add = (term, value) => card.append(h("div", {}, h("dt", { text: term }), h("dd", { text: value })));
  add("model", `${r.model}: ${r.mechanism}`);
  add("parameters", Number(r.params).toLocaleString("en"));
  add("data", `${r.data.name ?? "?"}: ${r.data.items === null || r.data.items === undefined ? "?" : Number(r.data.items).toLocaleString("en")} items, vocabulary ${r.data.vocab_size}`);
  const sizes = Object.entries(r.config).filter(([k, v]) => k !== "vocab_size" && typeof v === "number");
  add("config", sizes.map(([k, v]) => `${k} ${v}`).join(", ") || "–");
  add("recipe", `${r.recipe.name ?? "?"}${r.recipe.trained_with ? ": " + r.recipe.trained_with : ""}`);
  add("NLL train / val / test", `${fmt(r.metrics.train_nll)} / ${fmt(r.metrics.val_nll)} / ${fmt(r.metrics.test_nll)}`);
  if (r.labels && r.labels.length) add("labels", r.labels.join(", "));
  if (!r.training_file) add("note", "training file not found: no percentiles, novel items or bigram counts");
  const link = (format, text) => h("a", { href: `/api/export?run=${encodeURIComponent(r.id)}&format=${format}`,
                                          download: "", class: "download", text });
  card.append(h("div", {}, h("dt", { text: "take it away" }),
                h("dd", {}, link("html", "Download as a page"), " ", link("js", "Download as a module"))));
}

// ------------------------------------------------------------------ labels: one, or a blend (every panel asks with it)

function renderLabels(r) {  // a labelled run: a label to choose, and one weight slider per label for a blend
  const labels = r.labels || [];
  $("s-labels").hidden = !labels.length;
  $("s-label").replaceChildren(h("option", { value: "", text: "all, each item's by its share" }),
    ...labels.map((l) => h("option", { value: l, text: l })));
  $("s-blend-sliders").replaceChildren(...labels.map((l, i) => {
    const slider = h("input", { id: `s-blend-${i}`, type: "range", min: "0", max: "1", step: "0.05", value: "0.5",
                                "data-label": l, "aria-label": `weight of ${l}` });
    const out = h("output", { for: `s-blend-${i}`, text: "0.50" });
    slider.addEventListener("input", () => {
      out.textContent = Number(slider.value).toFixed(2);
      refreshNext();  // the bars follow the blend as it is set
    });
    return h("label", { class: "slider" }, h("span", { text: l }), slider, out);
  }));
  if (!labels.length) $("s-blend").checked = false;
  setBlend();
}

function setBlend() {  // blending: the sliders on, the one-label choice off
  const on = $("s-blend").checked;
  $("s-label").disabled = on;
  for (const slider of document.querySelectorAll("#s-blend-sliders input")) slider.disabled = !on;
}

function labelChoice() {  // what a request about the run adds: {blend: {label: weight}}, {label}, or nothing
  if (!state.run || !(state.run.labels || []).length) return {};
  if ($("s-blend").checked) {
    const sliders = [...document.querySelectorAll("#s-blend-sliders input")];
    return { blend: Object.fromEntries(sliders.map((s) => [s.dataset.label, Number(s.value)])) };
  }
  return $("s-label").value ? { label: $("s-label").value } : {};
}

// ------------------------------------------------------------------ generate

const RANDOM_ONLY = ["s-temperature", "s-top-k", "s-top-p", "s-seed"];  // they shape random draws: not a search's

function setMode() {  // most likely: the controls of random draws are off, the search's budget on
  const ranked = $("s-most-likely").checked;
  for (const id of RANDOM_ONLY) $(id).disabled = ranked;
  $("s-max-expansions").disabled = !ranked;
}

function sampleBody() {
  const body = {
    run: state.run.id, n: numberOr("s-n", 12), prefix: $("s-prefix").value, suffix: $("s-suffix").value,
    contains: $("s-contains").value, min_len: numberOr("s-min-len", 0), max_len: numberOr("s-max-len", null),
    novel: $("s-novel").checked, unique: $("s-unique").checked, avoid: lines("s-avoid"), ...labelChoice(),
  };
  if ($("s-most-likely").checked) return { ...body, most_likely: true, max_expansions: numberOr("s-max-expansions", null) };
  return { ...body, temperature: numberOr("s-temperature", 1), top_k: numberOr("s-top-k", null),
           top_p: numberOr("s-top-p", null), seed: numberOr("s-seed", null) };
}

async function generate(event) {
  event.preventDefault();
  showError("sample-error", null);
  const body = sampleBody();
  $("s-go").disabled = true;
  $("s-status").textContent = body.most_likely ? "searching…" : "generating…";
  try {
    const data = await api("/api/sample", body);
    state.samples = data.items;
    renderSamples(data, body.n);
    $("s-status").textContent = data.exact === undefined ? `seed ${data.seed}, max length ${data.max_len}` :
      `most likely, ${data.exact ? "exact" : "not exact"}: ${Number(data.expansions).toLocaleString("en")} prefixes ` +
      `expanded, max length ${data.max_len}`;
  } catch (e) {
    showError("sample-error", e);
    $("s-status").textContent = "";
  } finally { $("s-go").disabled = false; }
}

function renderSamples(data, asked) {
  const tbody = h("tbody");
  for (const s of data.items) {
    tbody.append(h("tr", {}, h("td", { class: "item", text: s.item }), h("td", { class: "num", text: fmt(s.log_prob) })));
  }
  const table = h("table", { class: "items" },
    h("thead", {}, h("tr", {}, h("th", { text: "item" }), h("th", { class: "num", text: "log p" }))), tbody);
  const notes = [];
  if (data.exact === false) {
    notes.push(h("p", { id: "s-inexact", class: "note", role: "status", text:
      `Not exact: the search stopped at ${Number(data.max_expansions).toLocaleString("en")} expanded prefixes. These ` +
      `are the best ${data.items.length} items it found, not certainly the ${asked} most likely; raise Max expansions ` +
      "for an exact answer." }));
  } else if (data.exact === true && data.items.length < asked) {
    notes.push(h("p", { class: "note", role: "status", text: `Only ${data.items.length} items fit these settings.` }));
  }
  $("sample-out").replaceChildren(...notes, table);
  $("s-copy").disabled = $("s-csv").disabled = data.items.length === 0;
}

function csvField(text) { return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text; }

async function copyItems() {
  const text = state.samples.map((s) => s.item).join("\n") + "\n";
  try { await navigator.clipboard.writeText(text); $("s-status").textContent = `copied ${state.samples.length} items`; }
  catch (e) { $("s-status").textContent = "the browser refused the clipboard; use Download CSV"; }
}

function downloadCsv() {
  const rows = ["item,log_prob", ...state.samples.map((s) => `${csvField(s.item)},${Number(s.log_prob).toFixed(6)}`)];
  const url = URL.createObjectURL(new Blob([rows.join("\n") + "\n"], { type: "text/csv" }));
  const a = h("a", { href: url, download: `${state.run.id.replace(/[^\w.-]+/g, "_")}-samples.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ------------------------------------------------------------------ next character (live)

function refreshNext() {
  clearTimeout(state.nextTimer);
  state.nextTimer = setTimeout(fetchNext, 60);  // typing fast: one request per pause
}

async function fetchNext() {
  if (!state.run) return;
  if (state.nextCall) state.nextCall.abort();  // an answer to an older prefix must not overwrite a newer one
  const choice = labelChoice();
  if ((state.run.labels || []).length && !choice.label && !choice.blend) {  // a labelled run's bars are one label's
    showError("next-error", null);
    note($("next-bars"), "A labelled run: choose a label, or turn Blend labels on (under Generate), to see its next characters.");
    return;
  }
  const call = new AbortController();
  state.nextCall = call;
  try {
    const body = { run: state.run.id, prefix: $("n-prefix").value, k: numberOr("n-k", 12), ...choice };
    const data = await api("/api/next", body, call.signal);
    showError("next-error", null);
    renderBars($("next-bars"), data.next);
  } catch (e) {
    if (e.name !== "AbortError") { showError("next-error", e); $("next-bars").replaceChildren(); }
  }
}

function renderBars(box, rows) {
  const top = Math.max(...rows.map((r) => r.prob), 1e-9);
  box.replaceChildren(...rows.map((r) => {
    const label = r.end ? "end" : `'${shown(r.char)}'`;
    const bar = h("div", { class: "bar" });
    bar.style.width = `${(100 * r.prob / top).toFixed(1)}%`;  // through the CSSOM: the page's CSP allows no style attributes
    return h("div", { class: "bar-row", role: "img", "aria-label": `${label}: ${(100 * r.prob).toFixed(1)} percent` },
      h("span", { class: "ch", text: label }), h("div", { class: "track" }, bar), h("span", { class: "p", text: r.prob.toFixed(3) }));
  }));
}

// ------------------------------------------------------------------ score

async function score(event) {
  event.preventDefault();
  showError("score-error", null);
  const items = lines("sc-items");
  if (!items.length) { showError("score-error", new Error("type at least one item")); return; }
  $("sc-go").disabled = true;
  try {
    const data = await api("/api/score", { run: state.run.id, items, explain: $("sc-explain").checked, ...labelChoice() });
    $("score-out").replaceChildren(...data.items.map(renderScore));
  } catch (e) { showError("score-error", e); }
  finally { $("sc-go").disabled = false; }
}

function renderScore(sc) {
  const stat = (name, value) => h("span", { class: "stat" }, `${name} `, h("b", { text: value }));
  const head = h("div", { class: "score-head" }, h("span", { class: "item", text: sc.item === "" ? "(empty)" : sc.item }),
    stat("log p", fmt(sc.log_prob)), stat("NLL/char", fmt(sc.nll_per_char)),
    stat("percentile", sc.percentile === null ? "–" : sc.percentile.toFixed(1)));
  const box = h("div", { class: "score-item" }, head);
  if ((sc.explain || []).length) {
    const cols = sc.explain.map((c) => {
      const label = c.end ? "end" : shown(c.char);
      const bar = h("div", { class: "char-bar" + (c.prob < 0.05 ? " low" : "") });
      bar.style.height = `${Math.max(2, 100 * c.prob).toFixed(1)}%`;
      return h("div", { class: "char-col", title: `${c.context} → ${label}: p ${c.prob.toFixed(4)}`,
                        role: "img", "aria-label": `${label} after ${c.context}: probability ${c.prob.toFixed(3)}` },
        h("div", { class: "col-track" }, bar), h("span", { class: "lbl", text: label }), h("span", { class: "pv", text: c.prob.toFixed(2) }));
    });
    box.append(h("div", { class: "explain" }, ...cols));
  }
  return box;
}

// ------------------------------------------------------------------ look inside

async function loadInside() {
  const id = state.run.id;
  showError("inside-error", null);
  try {
    const data = await api("/api/inside", { run: id });
    if (state.run.id !== id) return;
    drawBigrams(data);
    drawEmbedding(data);
  } catch (e) { showError("inside-error", e); }
}

function note(box, text) { box.replaceChildren(h("p", { class: "hint", text })); }

function drawBigrams(data) {
  const box = $("bigrams");
  if (!data.bigrams) { note(box, data.bigrams_note || "no bigram counts"); return; }
  const { labels, counts } = data.bigrams;
  const V = labels.length, cell = 26, pad = 16;
  const max = Math.max(...counts.flat(), 1);
  const svg = s("svg", { viewBox: `0 0 ${pad + V * cell} ${pad + V * cell}`, role: "img",
                         "aria-label": `bigram counts, ${V} by ${V}; the most frequent pair occurs ${max} times` });
  const text = V <= 40;
  labels.forEach((l, i) => {
    svg.append(s("text", { x: pad + i * cell + cell / 2, y: 11, "text-anchor": "middle", "font-size": 10, class: "muted" }, shown(l)));
    svg.append(s("text", { x: 8, y: pad + i * cell + cell / 2 + 3, "text-anchor": "middle", "font-size": 10, class: "muted" }, shown(l)));
  });
  counts.forEach((row, i) => row.forEach((c, j) => {
    const share = c / max;
    const g = s("g");
    g.append(s("rect", { x: pad + j * cell, y: pad + i * cell, width: cell - 1, height: cell - 1,
                         class: "cell", "fill-opacity": (0.04 + 0.96 * share).toFixed(3) }));
    g.append(s("title", {}, `${shown(labels[i])}${shown(labels[j])}: ${c}`));
    if (text) {
      const tone = share > 0.45 ? "on-dark" : "";
      g.append(s("text", { x: pad + j * cell + cell / 2, y: pad + i * cell + 10, "text-anchor": "middle", "font-size": 7.5, class: tone },
                 shown(labels[i]) + shown(labels[j])));
      g.append(s("text", { x: pad + j * cell + cell / 2, y: pad + i * cell + 20, "text-anchor": "middle", "font-size": 6.5, class: tone }, c));
    }
    svg.append(g);
  }));
  box.replaceChildren(svg);
}

function scale(values, lo, hi) {
  const min = Math.min(...values), max = Math.max(...values), span = max - min || 1;
  return (v) => lo + (hi - lo) * (v - min) / span;
}

function drawEmbedding(data) {
  const box = $("embedding");
  if (!data.embedding) {
    $("embedding-caption").textContent = "Character embeddings";
    note(box, data.embedding_note || "no embedding table");
    return;
  }
  const e = data.embedding, W = 420, H = 360, m = 34;
  $("embedding-caption").textContent = `Character embeddings in 2D: ${e.method}`;
  const x = scale(e.x, m, W - m), y = scale(e.y, H - m, m);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `character embeddings: ${e.method}` });
  svg.append(s("rect", { x: 1, y: 1, width: W - 2, height: H - 2, fill: "none", class: "axis" }));
  svg.append(s("text", { x: W / 2, y: H - 6, "text-anchor": "middle", "font-size": 11, class: "muted" }, e.axes[0]));
  svg.append(s("text", { x: 12, y: H / 2, "text-anchor": "middle", "font-size": 11, class: "muted", transform: `rotate(-90 12 ${H / 2})` }, e.axes[1]));
  e.labels.forEach((l, i) => {
    svg.append(s("circle", { cx: x(e.x[i]), cy: y(e.y[i]), r: 10, class: "dot" }));
    svg.append(s("text", { x: x(e.x[i]), y: y(e.y[i]) + 4, "text-anchor": "middle", "font-size": 11, class: "on-dark", "font-weight": 600 }, shown(l)));
  });
  box.replaceChildren(svg);
}

function drawResults() {
  const box = $("results");
  const table = state.results.find((t) => t.rows.some((r) => r.run === state.run.id)) || state.results[0];
  if (!table) {
    $("results-caption").textContent = "Results";
    note(box, "no results.json or leaderboard.json among the folders served (serve a folder written by reproduce or leaderboard)");
    return;
  }
  const rows = table.rows.filter((r) => r.val_nll !== null && r.val_nll !== undefined);
  $("results-caption").textContent = `${table.kind === "leaderboard" ? "Leaderboard" : "The essay's table"}: ${table.name}` +
    `${table.dataset ? " on " + table.dataset : ""} (NLL per character, lower is better; ● val, | train, ◆ test)`;
  const W = 460, rowH = 24, left = 150, right = 20, top = 10, H = top + rows.length * rowH + 30;
  const values = rows.flatMap((r) => [r.train_nll, r.val_nll, r.test_nll, r.essay_val_nll].filter((v) => v !== null && v !== undefined));
  const lo = Math.floor((Math.min(...values) - 0.02) * 10) / 10, hi = Math.ceil((Math.max(...values) + 0.02) * 10) / 10;
  const x = (v) => left + (W - left - right) * (v - lo) / (hi - lo || 1);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "validation NLL per run" });
  for (let t = lo; t <= hi + 1e-9; t += 0.1) {
    svg.append(s("line", { x1: x(t), x2: x(t), y1: top, y2: H - 24, class: "axis" }));
    svg.append(s("text", { x: x(t), y: H - 10, "text-anchor": "middle", "font-size": 10, class: "muted" }, t.toFixed(1)));
  }
  rows.forEach((r, i) => {
    const cy = top + i * rowH + rowH / 2, mine = r.run === state.run.id;
    svg.append(s("text", { x: left - 8, y: cy + 4, "text-anchor": "end", "font-size": 11, "font-weight": mine ? 700 : 400 }, r.label));
    if (r.train_nll !== null) svg.append(s("line", { x1: x(r.train_nll), x2: x(r.train_nll), y1: cy - 7, y2: cy + 7, class: "tick" }));
    if (r.test_nll !== null) svg.append(s("path", { d: `M${x(r.test_nll)} ${cy - 5}l5 5l-5 5l-5 -5z`, class: "test" }));
    svg.append(s("circle", { cx: x(r.val_nll), cy, r: 6, class: mine ? "sel" : "dot" }));
    svg.append(s("text", { x: x(r.val_nll), y: cy - 8, "text-anchor": "middle", "font-size": 9, class: "muted" }, fmt(r.val_nll)));
  });
  box.replaceChildren(svg);
}

// ------------------------------------------------------------------ start

document.addEventListener("DOMContentLoaded", () => {
  $("sample-form").addEventListener("submit", generate);
  $("s-most-likely").addEventListener("change", setMode);
  setMode();  // a reload may keep the box ticked
  $("s-blend").addEventListener("change", () => { setBlend(); refreshNext(); });
  $("s-label").addEventListener("change", refreshNext);
  $("score-form").addEventListener("submit", score);
  $("next-form").addEventListener("submit", (e) => { e.preventDefault(); refreshNext(); });
  $("n-prefix").addEventListener("input", refreshNext);
  $("n-k").addEventListener("input", refreshNext);
  $("s-copy").addEventListener("click", copyItems);
  $("s-csv").addEventListener("click", downloadCsv);
  loadRuns();
});
