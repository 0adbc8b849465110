// makemore's JavaScript runtime, part 1 of 3: reading an exported run, the numeric helpers every model's forward
// pass uses, and the registry the model files fill (models_windowed.js, models_sequence.js). api.js then samples,
// scores and ranks next characters with any of them. The .html page and the .mjs module are these files
// concatenated with the run's bundle (makemore/export/bundle.py): one implementation for both, no dependencies.
//
// The model contract. MODELS[name] = (config, t) => model, where config is the run's model config and t(name) the
// state-dict tensor of that name ({shape, data}: data a typed array, row-major as in PyTorch). The model has
//   model.logits(seq)  -> Float64Array(V): the logits of the character after seq, exactly PyTorch's forward in eval
//                         mode at its last position. seq: [boundary, ...item so far], each index label * V + char
//                         (seq[0] is the label's boundary, label * V; V = config.vocab_size)
//   model.stepper()    -> optional {feed(index) -> Float64Array(V)}: the same logits, one index at a time (from the
//                         boundary on), for models that carry a state (recurrent ones): sampling then costs one step
//                         per character instead of a pass over the item so far.

"use strict";

const MODELS = {};  // registry name -> builder (config, t) => model
const BOUNDARY = 0;

function decodeBundle(bundle) {
  // the tensors, as typed arrays over one buffer decoded from base64: name -> {shape, data}
  const bytes = base64Bytes(bundle.data);
  const tensors = {};
  for (const t of bundle.tensors) {
    const Kind = { float32: Float32Array, int32: Int32Array, float64: Float64Array }[t.dtype];
    if (!Kind) throw new Error(`unknown tensor type ${t.dtype} of ${t.name}`);
    tensors[t.name] = { shape: t.shape, data: new Kind(bytes.buffer, bytes.byteOffset + t.offset, t.length) };
  }
  return tensors;
}

function base64Bytes(text) {
  if (typeof atob === "function") {
    const raw = atob(text);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  return new Uint8Array(Buffer.from(text, "base64"));  // Node before atob (never reached on 18+, kept for safety)
}

function tensorGetter(tensors, prefix = "") {
  // t(name): the tensor `prefix + name`; a missing one is an error naming it (a model and its export disagree)
  return (name) => {
    const found = tensors[prefix + name];
    if (!found) throw new Error(`the export has no tensor ${prefix + name}`);
    return found;
  };
}

function buildModel(name, config, t) {
  const build = MODELS[name];
  if (!build) throw new Error(`this runtime has no model ${name}`);
  return build(config, t);
}

// ------------------------------------------------------------------ numeric helpers (float64 arithmetic)

const NN = {
  // row r of a (rows, cols) tensor, as a Float64Array copy
  row(t, r) {
    const cols = t.shape[t.shape.length - 1];
    return Float64Array.from(t.data.subarray(r * cols, (r + 1) * cols));
  },
  // y = x W for W of shape (in, out) (makemore's own Linear layers), plus b when given
  xW(x, W, b = null) {
    const [n, m] = W.shape;
    const y = new Float64Array(m);
    if (b) for (let j = 0; j < m; j++) y[j] = b.data[j];
    for (let i = 0; i < n; i++) {
      const xi = x[i];
      if (xi === 0) continue;
      const off = i * m;
      for (let j = 0; j < m; j++) y[j] += xi * W.data[off + j];
    }
    return y;
  },
  // y = W x for W of shape (out, in) (torch.nn.Linear's layout), plus b when given
  Wx(W, x, b = null) {
    const [m, n] = W.shape;
    const y = new Float64Array(m);
    for (let j = 0; j < m; j++) {
      let s = b ? b.data[j] : 0;
      const off = j * n;
      for (let i = 0; i < n; i++) s += W.data[off + i] * x[i];
      y[j] = s;
    }
    return y;
  },
  add(a, b) { const y = new Float64Array(a.length); for (let i = 0; i < a.length; i++) y[i] = a[i] + b[i]; return y; },
  tanh(x) { return x.map(Math.tanh); },
  sigmoid(x) { return x.map((v) => 1 / (1 + Math.exp(-v))); },
  relu(x) { return x.map((v) => (v > 0 ? v : 0)); },
  gelu(x) { return x.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2))); },
  concat(parts) {
    const y = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) { y.set(p, at); at += p.length; }
    return y;
  },
  // an eval-mode normalisation folded into one scale and shift per feature: y = x * scale + shift
  fold(gain, bias, mean, variance, eps) {
    const n = gain.data.length;
    const scale = new Float64Array(n), shift = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      scale[i] = gain.data[i] / Math.sqrt(variance.data[i] + eps);
      shift[i] = (bias ? bias.data[i] : 0) - mean.data[i] * scale[i];
    }
    return (x) => { const y = new Float64Array(n); for (let i = 0; i < n; i++) y[i] = x[i] * scale[i] + shift[i]; return y; };
  },
  layerNorm(x, gain, bias, eps) {
    const n = x.length;
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[i];
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[i] - mean) ** 2;
    v /= n;
    const inv = 1 / Math.sqrt(v + eps);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * (gain ? gain.data[i] : 1) + (bias ? bias.data[i] : 0);
    return y;
  },
};

function erf(x) {  // Abramowitz-Stegun 7.1.26 is too coarse for 1e-5: a series / continued fraction, to ~1e-15
  const s = Math.sign(x), a = Math.abs(x);
  if (a < 3) {
    let sum = a, term = a;
    for (let n = 1; n < 200; n++) {
      term *= -a * a / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return s * 2 / Math.sqrt(Math.PI) * sum;
  }
  let f = 0;  // erfc by its continued fraction
  for (let n = 60; n >= 1; n--) f = n / 2 / (a + f);
  return s * (1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f));
}

function logSoftmax(z) {
  let max = -Infinity;
  for (const v of z) if (v > max) max = v;
  let sum = 0;
  for (const v of z) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return z.map((v) => v - lse);
}

function softmax(z) { return logSoftmax(z).map(Math.exp); }
