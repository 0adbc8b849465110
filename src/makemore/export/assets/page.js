// makemore export: the page's interface. It follows the runtime (core.js, the model files, api.js) in the page's
// one inline script and calls only what api.js's load(bundle) returns: info, sample, score, next, probs.
// The run's bundle is the page's JSON data element. Everything from the data (characters, labels, items) is
// written into the document as text (textContent, attribute values set through the DOM), never as markup; no
// inline handler, no style attribute (the page's Content-Security-Policy forbids both): listeners are attached
// here and a bar's width is set through the CSSOM. All in one function, so no name can clash with the runtime's.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const state = { run: null, info: null, samples: [], sampled: null, nextTimer: 0 };
  const MAX_COUNT = 1000;

  function h(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v;
      else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) node.append(c);  // strings become text nodes
    return node;
  }

  function showError(id, error) {
    const p = $(id);
    if (!error) { p.hidden = true; p.textContent = ""; return; }
    p.hidden = false;
    p.textContent = (error && error.message) || String(error);
  }

  const fmt = (x, d = 4) => (x === null || x === undefined || !Number.isFinite(Number(x)) ? "–" : Number(x).toFixed(d));
  const codePoint = (c) => `U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
  // a character as a label shows it: a space as ␠, another blank or an invisible one (a tab, U+2028) by its code
  const shown = (c) => (c === " " ? "␠" : /^[\p{C}\p{Z}]$/u.test(c) ? codePoint(c) : c);
  const lines = (id) => $(id).value.split("\n").map((l) => l.replace(/\r$/, "")).filter((l) => l.trim() !== "");

  // a number field: its value, `fallback` when empty; an error naming the field when it is not a number
  function numberOf(id, what, fallback, { integer = false, min = -Infinity, max = Infinity } = {}) {
    const box = $(id);
    const raw = box.value.trim();
    if (raw === "" && !(box.validity && box.validity.badInput)) return fallback;
    const v = Number(raw);
    if (raw === "" || !Number.isFinite(v)) throw new Error(`${what} must be a number`);
    if (integer && !Number.isInteger(v)) throw new Error(`${what} must be a whole number`);
    if (v < min || v > max) {
      throw new Error(`${what} must be ${max === Infinity ? `at least ${min}` : `between ${min} and ${max}`}`);
    }
    return v;
  }

  // ------------------------------------------------------------------ the run

  function start() {
    let bundle;
    try {
      bundle = JSON.parse($("bundle").textContent);
      state.run = load(bundle);
      state.info = state.run.info();
    } catch (e) {
      showError("load-error", new Error(`This page cannot load its run: ${e.message}`));
      for (const el of document.querySelectorAll("main button, main input, main select, main textarea")) el.disabled = true;
      return;
    }
    const info = state.info;
    $("run-name").textContent = `${info.run.name} (${info.model})`;
    renderCard(info);
    renderLabels(info.labels);
    $("s-max-len").placeholder = `auto (${info.max_len})`;
    const novel = $("s-novel");
    novel.disabled = !info.training_items;
    $("s-novel-label").classList.toggle("off", novel.disabled);
    $("s-novel-hint").textContent = info.training_items
      ? `Novel only: skip the items already in the training list (${info.training_items.toLocaleString("en")} ` +
        "items are in this page) and repeats."
      : "Novel only needs the training items in the page: export with --with-training-items.";

    $("sample-form").addEventListener("submit", generate);
    $("s-copy").addEventListener("click", copyItems);
    $("s-download").addEventListener("click", () => download("csv"));
    $("s-download-txt").addEventListener("click", () => download("txt"));
    $("s-label").addEventListener("change", refreshNext);
    $("next-form").addEventListener("submit", (e) => { e.preventDefault(); showNext(); });
    $("n-prefix").addEventListener("input", refreshNext);
    $("n-k").addEventListener("input", refreshNext);
    $("score-form").addEventListener("submit", scoreItems);
    refreshNext();
  }

  function renderCard(info) {
    const card = $("run-card");
    card.replaceChildren();
    const add = (term, ...value) => card.append(h("div", {}, h("dt", { text: term }), h("dd", {}, ...value)));
    const run = info.run || {};
    const metrics = run.metrics || {};
    add("name", String(run.name ?? "?"));
    add("model", String(info.model));
    add("parameters", Number(run.params).toLocaleString("en"));
    if (run.dataset) add("data", String(run.dataset));
    const nll = ["train", "val", "test"].map((part) => fmt(metrics[`${part}_nll`]));
    add("NLL train / val / test", nll.join(" / "));
    if (metrics.test_nll !== undefined && metrics.test_nll !== null) {
      card.lastChild.querySelector("dd").setAttribute("data-test-nll", String(metrics.test_nll));
    }
    add("max length", String(info.max_len));
    const chars = h("span", { id: "vocab", class: "chars", "aria-label": "the characters of the vocabulary" },
      ...info.chars.map((c) => h("span", { class: "ch", title: codePoint(c), text: shown(c) })));
    add("vocabulary", `${info.chars.length} characters and the end (${info.chars.length + 1} in all)`, chars);
    if (info.labels) add("labels", h("span", { id: "card-labels", text: info.labels.join(", ") }));
    add("training items in the page", info.training_items ? info.training_items.toLocaleString("en") : "none");
  }

  function renderLabels(labels) {
    $("s-labels").hidden = !labels;
    const options = [h("option", { value: "", text: labels ? "all, each item's label by its share" : "none" })];
    for (const name of labels || []) {
      const o = h("option", { text: name });
      o.value = name;
      options.push(o);
    }
    $("s-label").replaceChildren(...options);
  }

  const chosenLabel = () => (state.info.labels ? $("s-label").value || null : null);

  // ------------------------------------------------------------------ generate

  function sampleOptions() {
    const o = {
      n: numberOf("s-n", "Count", 12, { integer: true, min: 1, max: MAX_COUNT }),
      temperature: numberOf("s-temperature", "Temperature", 1, { min: Number.MIN_VALUE }),
      top_k: numberOf("s-top-k", "Top-k", null, { integer: true, min: 1 }),
      top_p: numberOf("s-top-p", "Top-p", null, { min: Number.MIN_VALUE, max: 1 }),
      prefix: $("s-prefix").value, suffix: $("s-suffix").value || null, contains: $("s-contains").value || null,
      min_len: numberOf("s-min-len", "Min length", 0, { integer: true, min: 0 }),
      max_len: numberOf("s-max-len", "Max length", null, { integer: true, min: 1 }),
      seed: numberOf("s-seed", "Seed", null, { integer: true }),
      label: chosenLabel(), novel: $("s-novel").checked && !$("s-novel").disabled,
    };
    for (const k of ["top_k", "top_p", "max_len", "seed"]) if (o[k] === null) delete o[k];
    return o;
  }

  async function generate(event) {
    event.preventDefault();
    showError("sample-error", null);
    let options;
    try { options = sampleOptions(); } catch (e) { showError("sample-error", e); return; }
    $("s-go").disabled = true;
    $("s-status").textContent = "generating…";
    await new Promise((resolve) => setTimeout(resolve, 0));  // the status is drawn before the work starts
    try {
      const data = state.run.sample(options);
      state.samples = data.items;
      state.sampled = options;
      renderSamples(data.items);
      $("s-status").textContent = `seed ${data.seed}, max length ${data.max_len}` +
        (options.label ? `, label ${options.label}` : "") + (options.novel ? ", novel only" : "");
      $("s-status").dataset.seed = String(data.seed);
    } catch (e) {
      showError("sample-error", e);
      $("s-status").textContent = "";
    } finally { $("s-go").disabled = false; }
  }

  function renderSamples(items) {
    const labelled = !!state.info.labels;
    const tbody = h("tbody");
    for (const s of items) {
      tbody.append(h("tr", {}, h("td", { class: "item", text: s.item }),
        ...(labelled ? [h("td", { class: "label", text: s.label })] : []),
        h("td", { class: "num", "data-log-prob": String(s.log_prob), text: fmt(s.log_prob) })));
    }
    const head = h("tr", {}, h("th", { text: "item" }), ...(labelled ? [h("th", { text: "label" })] : []),
      h("th", { class: "num", text: "log p" }));
    $("sample-out").replaceChildren(h("table", { class: "items" }, h("thead", {}, head), tbody));
    const none = items.length === 0;
    for (const id of ["s-copy", "s-download", "s-download-txt"]) $(id).disabled = none;
    $("s-copy-box").hidden = true;
  }

  const itemsText = () => state.samples.map((s) => s.item).join("\n") + "\n";

  async function copyItems() {
    const text = itemsText();
    try {
      if (!navigator.clipboard || !navigator.clipboard.writeText) throw new Error("no clipboard");
      await navigator.clipboard.writeText(text);
      $("s-copy-box").hidden = true;
      $("s-status").textContent = `copied ${state.samples.length} items`;
    } catch (e) {  // no clipboard here (an older browser, a permission refused): the items selected to copy by hand
      const box = $("s-copy-box");
      box.value = text;
      box.hidden = false;
      box.focus();
      box.select();
      let copied = false;
      try { copied = document.execCommand("copy"); } catch (_) { copied = false; }
      $("s-status").textContent = copied ? `copied ${state.samples.length} items`
        : "the browser refused the clipboard: the items are selected below, press Ctrl+C (⌘C), or use Download";
    }
  }

  function csvField(text) { return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text; }

  function download(kind) {
    const labelled = !!state.info.labels;
    let text, type;
    if (kind === "csv") {
      const rows = [labelled ? "item,label,log_prob" : "item,log_prob", ...state.samples.map((s) =>
        [csvField(s.item), ...(labelled ? [csvField(s.label)] : []), Number(s.log_prob).toFixed(6)].join(","))];
      text = rows.join("\n") + "\n";
      type = "text/csv;charset=utf-8";
    } else {
      text = itemsText();
      type = "text/plain;charset=utf-8";
    }
    const name = `${String(state.info.run.name).replace(/[^\w.-]+/g, "_") || "makemore"}-items.${kind}`;
    let url, revoke = false;
    try {
      url = URL.createObjectURL(new Blob([text], { type }));
      revoke = true;
    } catch (e) {  // no object URLs: the same text as a data: URL
      url = `data:${type},${encodeURIComponent(text)}`;
    }
    const a = h("a", { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    if (revoke) setTimeout(() => URL.revokeObjectURL(url), 10000);
    $("s-status").textContent = `downloaded ${state.samples.length} items as ${name}`;
  }

  // ------------------------------------------------------------------ next character (live)

  function refreshNext() {
    clearTimeout(state.nextTimer);
    state.nextTimer = setTimeout(showNext, 60);  // typing fast: one computation per pause
  }

  function showNext() {
    clearTimeout(state.nextTimer);
    const box = $("next-bars");
    const label = chosenLabel();
    if (state.info.labels && !label) {
      showError("next-error", null);
      box.replaceChildren(h("p", { class: "hint", text: "A labelled run: choose a label (under Generate) to see its next characters." }));
      return;
    }
    try {
      const k = numberOf("n-k", "Show", 12, { integer: true, min: 1 });
      const data = state.run.next($("n-prefix").value, { k, label });
      showError("next-error", null);
      renderBars(box, data.next);
    } catch (e) {
      showError("next-error", e);
      box.replaceChildren();
    }
  }

  function renderBars(box, rows) {
    const top = Math.max(...rows.map((r) => r.prob), 1e-9);
    box.replaceChildren(...rows.map((r) => {
      const label = r.end ? "end" : `'${shown(r.char)}'`;
      const bar = h("div", { class: "bar" });
      bar.style.width = `${(100 * r.prob / top).toFixed(1)}%`;  // through the CSSOM: the CSP allows no style attributes
      return h("div", { class: "bar-row", role: "img", "aria-label": `${label}: ${(100 * r.prob).toFixed(1)} percent`,
                        "data-prob": String(r.prob) },
        h("span", { class: "ch", text: label }), h("div", { class: "track" }, bar),
        h("span", { class: "p", text: r.prob.toFixed(3) }));
    }));
  }

  // ------------------------------------------------------------------ score

  function scoreItems(event) {
    event.preventDefault();
    showError("score-error", null);
    const items = lines("sc-items");
    if (!items.length) { showError("score-error", new Error("type an item, one per line")); return; }
    const label = chosenLabel();
    let data;
    try { data = state.run.score(items, { label }); } catch (e) {
      showError("score-error", e);
      $("score-out").replaceChildren();
      return;
    }
    const explain = $("sc-explain").checked;
    const canExplain = !state.info.labels || label;
    const blocks = data.items.map((s) => {
      const stat = (name, value, key) => h("span", { class: "stat" }, `${name} `,
        h("b", { [key]: String(value), text: fmt(value) }));
      const head = h("div", { class: "score-head" }, h("span", { class: "item", text: s.item }),
        stat("log p", s.log_prob, "data-log-prob"), stat("NLL per character", s.nll_per_char, "data-nll"),
        h("span", { class: "stat", text: `${s.predicted} predictions (the end included)` }));
      const block = h("div", { class: "score-item" }, head);
      if (explain && canExplain) block.append(explainItem(s.item, label));
      return block;
    });
    const notes = explain && !canExplain
      ? [h("p", { class: "hint", text: "Scored under all labels together; choose a label to explain each character." })] : [];
    $("score-out").replaceChildren(...notes, ...blocks);
  }

  function explainItem(item, label) {  // each character's probability given the ones before it, then the end's
    const index = new Map(state.info.chars.map((c, i) => [c, i + 1]));
    const chars = Array.from(item);
    const cols = [];
    for (let t = 0; t <= chars.length; t++) {
      const p = state.run.probs(chars.slice(0, t).join(""), label);
      const end = t === chars.length;
      const prob = p[end ? 0 : index.get(chars[t])];
      const bar = h("div", { class: "char-bar" + (prob < 0.05 ? " low" : "") });
      bar.style.height = `${Math.max(2, 100 * prob).toFixed(1)}%`;
      cols.push(h("div", { class: "char-col", role: "img", "aria-label": `${end ? "end" : shown(chars[t])}: ${(100 * prob).toFixed(1)} percent` },
        h("div", { class: "col-track" }, bar), h("span", { class: "lbl", text: end ? "end" : shown(chars[t]) }),
        h("span", { class: "pv", text: prob.toFixed(2) })));
    }
    return h("div", { class: "explain" }, ...cols);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
