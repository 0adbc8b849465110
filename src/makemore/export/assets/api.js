// makemore's JavaScript runtime, part 3 of 3: an exported run's operations, as functions returning plain objects.
//   load(bundle) -> {info(), sample(options), score(items, options), next(prefix, options), probs(prefix, label)}
// They mirror `makemore sample`, `score` and `next`: the same controls, log-probabilities under the model itself
// (temperature 1, no masks) in nats, the end token as "<end>". A seeded generator makes the same items for the
// same seed in any JavaScript engine (not the items PyTorch draws: its generator is another).

const END = "<end>";
const MAX_DRAWS = 200000;  // items a suffix / contains / novel request may draw before it gives up

function rng32(seed) {  // mulberry32 over a 32-bit state made from the seed: uniform numbers in [0, 1)
  let a = (Number(BigInt.asUintN(32, BigInt(Math.trunc(seed)))) ^ 0x9e3779b9) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function load(bundle) {
  if (bundle.format !== "makemore-export") throw new Error("not a makemore export");
  const tensors = decodeBundle(bundle);
  const model = buildModel(bundle.model, bundle.config, tensorGetter(tensors));
  const chars = bundle.chars;
  const V = bundle.config.vocab_size;
  const code = new Map(chars.map((c, i) => [c, i + 1]));
  const labels = bundle.labels;  // null, or {names, priors}
  const training = new Set(bundle.training_items || []);

  const text = (s) => {  // a string read as the run reads its items
    let out = String(s);
    if (bundle.text.nfc) out = out.normalize("NFC");
    return bundle.text.lowercase ? out.toLowerCase() : out;
  };
  const encode = (s, what) => {
    const out = [];
    for (const ch of s) {
      if (!code.has(ch)) throw new Error(`${what} has a character the model never saw: ${JSON.stringify(ch)}`);
      out.push(code.get(ch));
    }
    return out;
  };
  const labelNumber = (name, required) => {
    if (!labels) {
      if (name) throw new Error("label: this run has no labels");
      return 0;
    }
    if (!name) {
      if (required) throw new Error(`label is needed on a labelled run: one of ${labels.names.join(", ")}`);
      return null;
    }
    const k = labels.names.indexOf(name);
    if (k < 0) throw new Error(`label ${JSON.stringify(name)} is not a label of this run: ${labels.names.join(", ")}`);
    return k;
  };

  // a reader of one item: the logits after each index fed ([boundary] first), by the model's cache or by re-reading
  const reader = (label) => {
    const offset = label * V;
    if (typeof model.stepper === "function") {
      const s = model.stepper();
      return (index) => s.feed(index + offset);
    }
    const seq = [];
    return (index) => { seq.push(index + offset); return model.logits(seq); };
  };

  const logProbOf = (codes, label) => {  // log p(item | label): its characters, then the end
    const read = reader(label);
    let logits = read(BOUNDARY), total = 0;
    for (const c of [...codes, BOUNDARY]) {
      total += logSoftmax(logits)[c];
      if (c !== BOUNDARY) logits = read(c);
    }
    return total;
  };

  function info() {
    return { model: bundle.model, run: bundle.run, chars: chars.slice(), labels: labels ? labels.names.slice() : null,
             max_len: bundle.max_len, training_items: training.size, text: { ...bundle.text } };
  }

  function probs(prefix = "", label = null) {  // p(next | prefix) over [end, ...chars]: Float64Array(V)
    const k = labelNumber(label, true);
    const read = reader(k);
    let logits = read(BOUNDARY);
    for (const c of encode(text(prefix), "the prefix")) logits = read(c);
    return softmax(logits);
  }

  function next(prefix = "", options = {}) {
    const p = probs(prefix, options.label || null);
    const k = Math.min(options.k || 10, p.length);
    const order = [...p.keys()].sort((a, b) => p[b] - p[a] || a - b).slice(0, k);
    return { prefix: text(prefix), label: options.label || null,
             next: order.map((i) => ({ char: i === BOUNDARY ? END : chars[i - 1], end: i === BOUNDARY, prob: p[i] })) };
  }

  function score(items, options = {}) {
    const k = labelNumber(options.label || null, false);
    return {
      label: options.label || null,
      items: items.map((raw) => {
        const item = text(raw);
        const codes = encode(item, "the item");
        let lp;
        if (k === null) {  // a labelled run as a whole: log sum_k p(k) p(item | k)
          const parts = labels.names.map((_, j) => Math.log(labels.priors[j]) + logProbOf(codes, j));
          const m = Math.max(...parts);
          lp = m + Math.log(parts.reduce((s, v) => s + Math.exp(v - m), 0));
        } else lp = logProbOf(codes, k);
        return { item, log_prob: lp, nll_per_char: -lp / (codes.length + 1), predicted: codes.length + 1 };
      }),
    };
  }

  function drawOne(random, o, label, prefixCodes) {
    const read = reader(label);
    let logits = read(BOUNDARY), lp = 0;
    for (const c of prefixCodes) { lp += logSoftmax(logits)[c]; logits = read(c); }
    const out = prefixCodes.slice();
    for (let t = prefixCodes.length; ; t++) {
      let c;
      if (t >= o.max_len) c = BOUNDARY;
      else {
        let z = Array.from(logits, (v) => v / o.temperature);
        if (t < o.min_len) z[BOUNDARY] = -Infinity;
        z = truncate(z, o.top_k, o.top_p);
        const p = softmax(z);
        const u = random();
        let acc = 0;
        c = -1;
        for (let i = 0; i < p.length; i++) { acc += p[i]; if (u < acc && p[i] > 0) { c = i; break; } }
        if (c < 0) for (let i = p.length - 1; i >= 0; i--) if (p[i] > 0) { c = i; break; }  // rounding at the top
      }
      lp += logSoftmax(logits)[c];
      if (c === BOUNDARY) break;
      out.push(c);
      logits = read(c);
    }
    return { item: out.map((i) => chars[i - 1]).join(""), log_prob: lp };
  }

  function sample(options = {}) {
    const o = {
      n: options.n ?? 10, seed: options.seed ?? Math.floor(Math.random() * 4294967296),
      temperature: options.temperature ?? 1, top_k: options.top_k ?? null, top_p: options.top_p ?? null,
      prefix: text(options.prefix || ""), suffix: options.suffix ? text(options.suffix) : null,
      contains: options.contains ? text(options.contains) : null, min_len: options.min_len ?? 0,
      max_len: options.max_len ?? bundle.max_len, label: options.label || null, novel: !!options.novel,
    };
    if (!(o.temperature > 0)) throw new Error("temperature must be greater than 0");
    if (!(Number.isInteger(o.n) && o.n >= 1)) throw new Error("n must be a whole number of at least 1");
    if (o.novel && !training.size) throw new Error("novel needs the training items: export with --with-training-items");
    const prefixCodes = encode(o.prefix, "the prefix");
    for (const [name, s] of [["suffix", o.suffix], ["contains", o.contains]]) if (s) encode(s, `the ${name}`);
    const fixed = labelNumber(o.label, false);
    const random = rng32(o.seed);
    const pickLabel = () => {
      if (!labels) return 0;
      if (fixed !== null) return fixed;
      let u = random(), acc = 0;
      for (let j = 0; j < labels.priors.length; j++) { acc += labels.priors[j]; if (u < acc) return j; }
      return labels.priors.length - 1;
    };
    const items = [], seen = new Set();
    let drawn = 0;
    while (items.length < o.n) {
      if (drawn >= MAX_DRAWS) {
        throw new Error(`only ${items.length} of ${o.n} items met the settings in ${MAX_DRAWS} draws: ask for fewer, ` +
                        `or loosen the suffix, contains or novel`);
      }
      const k = pickLabel();
      const s = drawOne(random, o, k, prefixCodes);
      drawn++;
      if (o.suffix && !s.item.endsWith(o.suffix)) continue;
      if (o.contains && !s.item.includes(o.contains)) continue;
      if (o.novel && (training.has(s.item) || seen.has(s.item))) continue;
      seen.add(s.item);
      items.push(labels ? { ...s, label: labels.names[k] } : s);
    }
    return { seed: o.seed, max_len: o.max_len, items };
  }

  return { info, sample, score, next, probs };
}

function truncate(z, topK, topP) {  // top-k, then the nucleus of mass top-p: the rest set to -Infinity
  if (topK && topK < z.length) {
    const kth = [...z].sort((a, b) => b - a)[topK - 1];
    let kept = 0;
    z = z.map((v) => (v > kth || (v === kth && kept < topK) ? (kept++, v) : -Infinity));
  }
  if (topP && topP < 1) {
    const p = softmax(z);
    const order = [...p.keys()].sort((a, b) => p[b] - p[a]);
    let mass = 0;
    const keep = new Set();
    for (const i of order) { if (mass >= topP) break; keep.add(i); mass += p[i]; }
    z = z.map((v, i) => (keep.has(i) ? v : -Infinity));
  }
  return z;
}
