// makemore's JavaScript runtime, part 2a: the windowed models' forward passes (see core.js for the contract).
//
// A windowed model reads the last block_size indices of seq, padded on the left with seq[0] (the label's boundary,
// label * V) when the item is shorter: what `makemore.models.reading.next_logits` feeds it (it pads with 0, and
// a labelled run's `WithLabel` then adds label * V to every index, the padding included). An index is taken
// apart as `split_labels` does: character = index % V, label = floor(index / V) (the index itself, label 0, on
// an unlabelled run). Eval mode: BatchNorm by its running statistics, folded once here; no dropout.
// The helpers sit in a block of their own, so their names stay out of the other model files' way.

{
  const BN_EPS = 1e-5;  // models.layers.BatchNorm's eps (never in a config)

  // the last T indices of seq, padded on the left with its boundary seq[0]: (T) indices
  const windowOf = (seq, T) => Array.from({ length: T }, (_, i) => seq[Math.max(0, seq.length - T + i)]);

  // index -> (character, label), as models.layers.split_labels
  const split = (index, V, nLabels) => (nLabels > 1 ? [index % V, Math.floor(index / V)] : [index, 0]);

  // index -> C[character] (+ the label's learned vector on a labelled run): (E)
  const embedder = (config, t, table = "C", labelTable = "label_emb.weight") => {
    const V = config.vocab_size, L = config.n_labels || 1;
    const C = t(table), labelVectors = L > 1 ? t(labelTable) : null;
    return (index) => {
      const [c, l] = split(index, V, L);
      const e = NN.row(C, c);
      return labelVectors ? NN.add(e, NN.row(labelVectors, l)) : e;
    };
  };

  // the window's embeddings side by side: (T * E), as emb.view(B, -1)
  const flatWindow = (seq, T, embed) => NN.concat(windowOf(seq, T).map(embed));

  const bnOf = (t, prefix) => NN.fold(t(`${prefix}.gain`), t(`${prefix}.bias`), t(`${prefix}.running_mean`),
                                       t(`${prefix}.running_var`), BN_EPS);

  // ---------------------------------------------------------------- bigrams: the last index alone

  // P_l(j | i) = (N_l[i, j] + kV Q_l(j | i)) / (N_l[i] + kV), kV Q_l = (O_l + k) * kV / (O_l[i] + kV), O_l the
  // other labels' counts pooled (0 with one label: +k smoothing); logits = log P[last index]. counts: (L * V, V)
  MODELS["bigram-counts"] = (config, t) => {
    const V = config.vocab_size, L = config.n_labels || 1, k = config.smoothing;
    const N = t("counts").data;  // row label * V + i
    const logP = [];  // (L * V) rows of (V)
    for (let l = 0; l < L; l++) {
      for (let i = 0; i < V; i++) {
        const row = new Float64Array(V);
        const other = new Float64Array(V);  // O_l[i, j]
        for (let j = 0; j < V; j++) {
          let all = 0;
          for (let m = 0; m < L; m++) all += Number(N[(m * V + i) * V + j]);
          other[j] = all - Number(N[(l * V + i) * V + j]);
        }
        const otherTotal = other.reduce((s, v) => s + v, 0);
        let total = 0;
        for (let j = 0; j < V; j++) {
          row[j] = Number(N[(l * V + i) * V + j]) + (other[j] + k) * (k * V / (otherTotal + k * V));
          total += row[j];
        }
        logP.push(row.map((p) => Math.log(p / total)));
      }
    }
    return { logits: (seq) => Float64Array.from(logP[seq[seq.length - 1]]) };
  };

  // logits = W[last character] + b_label: W (V, V), label_bias.weight (L, V)
  MODELS["bigram-nn"] = (config, t) => {
    const row = embedder(config, t, "W", "label_bias.weight");
    return { logits: (seq) => row(seq[seq.length - 1]) };
  };

  // ---------------------------------------------------------------- MLPs: the window flattened

  // h = tanh(x W1 + b1); logits = h W2 + b2. x (T * E), W1 (T * E, H), W2 (H, V)
  MODELS["mlp"] = (config, t) => {
    const embed = embedder(config, t), T = config.block_size;
    const W1 = t("W1"), b1 = t("b1"), W2 = t("W2"), b2 = t("b2");
    return { logits: (seq) => NN.xW(NN.tanh(NN.xW(flatWindow(seq, T, embed), W1, b1)), W2, b2) };
  };

  // h = tanh(BN(x W1)); logits = h W2 + b2. x (T * E), W1 (T * E, H), W2 (H, V)
  MODELS["mlp-bn"] = (config, t) => {
    const embed = embedder(config, t), T = config.block_size;
    const W1 = t("W1"), bn = bnOf(t, "bn"), W2 = t("W2"), b2 = t("b2");
    return { logits: (seq) => NN.xW(NN.tanh(bn(NN.xW(flatWindow(seq, T, embed), W1))), W2, b2) };
  };

  // x_{i+1} = tanh(BN_i(W_i x_i)) (or tanh(W_i x_i + b_i) without batch norm); logits = W_out x_n + b_out.
  // torch.nn.Linear weights: linears.i.weight (H, T * E) then (H, H), out.weight (V, H)
  MODELS["mlp-deep"] = (config, t) => {
    const embed = embedder(config, t), T = config.block_size;
    const layers = Array.from({ length: config.n_layers }, (_, i) => {
      const W = t(`linears.${i}.weight`);
      if (!config.batchnorm) { const b = t(`linears.${i}.bias`); return (x) => NN.Wx(W, x, b); }
      const bn = bnOf(t, `norms.${i}`);
      return (x) => bn(NN.Wx(W, x));
    });
    const Wout = t("out.weight"), bout = t("out.bias");
    return {
      logits(seq) {
        let x = flatWindow(seq, T, embed);  // (T * E)
        for (const layer of layers) x = NN.tanh(layer(x));  // (H)
        return NN.Wx(Wout, x, bout);  // (V)
      },
    };
  };

  // ---------------------------------------------------------------- WaveNet: the window fused in pairs

  // Level k: each pair of neighbours (a, b) -> tanh(BN_k([a, b] W_k)), W_k (2 C_k, H); T -> T/2 -> ... -> 1;
  // logits = W_out x + b_out, out.weight (V, H). `wavenet-conv` is the same tree slid along the item: its last
  // position reads exactly its last block_size inputs, boundaries padded in front (the cropped item's first
  // index // V * V: the label's boundary), so it is this model on the window `next_logits` crops to.
  const wavenet = (config, t) => {
    const embed = embedder(config, t), T = config.block_size;
    const levels = Array.from({ length: Math.log2(T) }, (_, k) => {
      const W = t(`levels.${k}.weight`), bn = bnOf(t, `levels.${k}.bn`);
      return (a, b) => NN.tanh(bn(NN.xW(NN.concat([a, b]), W)));  // (C_k), (C_k) -> (H)
    });
    const Wout = t("out.weight"), bout = t("out.bias");
    return {
      logits(seq) {
        let xs = windowOf(seq, T).map(embed);  // T of (E)
        for (const fuse of levels) xs = Array.from({ length: xs.length / 2 }, (_, i) => fuse(xs[2 * i], xs[2 * i + 1]));
        return NN.Wx(Wout, xs[0], bout);  // (V)
      },
    };
  };
  MODELS["wavenet"] = wavenet;
  MODELS["wavenet-conv"] = wavenet;

  // ---------------------------------------------------------------- n-gram counts

  // Interpolated Kneser-Ney, from order 0 (context length 0) up, starting from the uniform 1/V:
  //   P_j(w | h) = (max(c_j(h w) - D_j, 0) + D_j N1+(h .) P_{j-1}(w | h')) / c_j(h), h the last j characters;
  //   an unseen context keeps P_{j-1} whole. On a labelled run one more level on top: context (label, h), the
  //   top order's D. add-k: P(w | h) = (c(h w) + k) / (c(h) + kV) at the top level alone.
  // Tables per level j, sorted by key (characters as base-V digits, oldest first; int32 or float64, exact):
  //   ctx_keys / ctx_total / ctx_types (c_j(h), N1+(h .)) per context, gram_keys / gram_counts per (h w).
  MODELS["ngram"] = (config, t) => {
    const V = config.vocab_size, m = config.block_size, L = config.n_labels || 1, top = m + (L > 1 ? 1 : 0);
    const D = Array.isArray(config.discount) ? config.discount.map(Number) : new Array(m + 1).fill(Number(config.discount));
    D.push(D[m]);  // the per-label level takes the top order's D
    const tables = Array.from({ length: top + 1 }, (_, j) => Object.fromEntries(
      ["ctx_keys", "ctx_total", "ctx_types", "gram_keys", "gram_counts"].map((n) => [n, t(`${n}${j}`).data])));
    const encode = (chars) => chars.reduce((key, c) => key * V + c, 0);  // base-V digits, oldest first: exact
    const Vm = encode([1, ...new Array(m).fill(0)]);  // V^m

    // the first position of key in sorted keys (or where it would go)
    const lowerBound = (keys, key) => {
      let lo = 0, hi = keys.length;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (keys[mid] < key) lo = mid + 1; else hi = mid; }
      return lo;
    };
    // level j's look-up of context key h: null if unseen, else {total c_j(h), types N1+(h .), counts c_j(h w) (V)}
    const lookup = (j, h) => {
      const tb = tables[j];
      const at = lowerBound(tb.ctx_keys, h);
      if (at === tb.ctx_keys.length || tb.ctx_keys[at] !== h) return null;
      const counts = new Float64Array(V);  // the grams h w are contiguous in gram_keys: h V + 0 ... h V + V - 1
      for (let g = lowerBound(tb.gram_keys, h * V); g < tb.gram_keys.length && tb.gram_keys[g] < h * V + V; g++) {
        counts[tb.gram_keys[g] - h * V] = Number(tb.gram_counts[g]);
      }
      return { total: Number(tb.ctx_total[at]), types: Number(tb.ctx_types[at]), counts };
    };

    const probs = (seq) => {  // (V) float64, exactly NGram.probs
      const window = windowOf(seq, m);  // (m) indices
      const chars = window.map((i) => split(i, V, L)[0]);
      const keys = Array.from({ length: m + 1 }, (_, j) => encode(chars.slice(m - j)));  // keys[j]: the last j
      if (top > m) keys.push(split(window[m - 1], V, L)[1] * Vm + keys[m]);  // the last index's label, outermost
      if (config.smoothing === "add-k") {
        const found = lookup(top, keys[top]), k = config.k;
        const { total, counts } = found || { total: 0, counts: new Float64Array(V) };  // unseen: uniform, k / kV
        return counts.map((c) => (c + k) / (total + k * V));
      }
      let p = new Float64Array(V).fill(1 / V);
      for (let j = 0; j <= top; j++) {
        const found = lookup(j, keys[j]);
        if (!found) continue;  // an unseen context hands its whole mass to the order below
        const { total, types, counts } = found;
        p = p.map((pw, w) => (Math.max(counts[w] - D[j], 0) + D[j] * types * pw) / Math.max(total, 1));
      }
      return p;
    };
    return { logits: (seq) => probs(seq).map(Math.log) };
  };
}
