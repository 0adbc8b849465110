// makemore's JavaScript runtime, part 2b: the sequence models' forward passes (see core.js for the contract).
//   rnn, gru, lstm   makemore/models/recurrent.py: one cell (torch.nn.RNN / GRU / LSTM, n_layer stacked) over the
//                    whole item; logits(seq) reads it from a zero state, stepper() carries the state.
//   transformer      makemore/models/transformer.py: a GPT decoder over the last block_size positions of the item,
//                    renumbered from 0 (makemore/models/reading.py `crop`); stepper() keeps a key/value cache while
//                    the item fits the position table and re-reads the cropped window after that.
//   ensemble         makemore/models/ensemble.py: log sum_m w_m softmax(member m's logits), each member read its
//                    own way (any registered model, windowed ones included).
// Everything in float64, eval mode (dropout off). Shapes: V vocabulary, E embedding, H hidden, C width, nh heads.
// The helpers sit in a block of their own, so their names stay out of the other model files' way.

{
  // An index is label * V + char; an unlabelled model (n_labels 1) reads the index as the character itself, as
  // PyTorch's split_labels does. The label embedding (n_labels, E) is in the state dict only when n_labels > 1.
  function splitLabels(config) {
    const V = config.vocab_size, labelled = (config.n_labels ?? 1) > 1;
    return (index) => (labelled ? { char: index % V, label: Math.floor(index / V) } : { char: index, label: null });
  }

  // the embedding of one index: wte[char] (+ label_emb[label]), (E)
  function embedder(config, t) {
    const split = splitLabels(config);
    const wte = t("wte.weight");  // (V, E)
    const labelEmb = (config.n_labels ?? 1) > 1 ? t("label_emb.weight") : null;  // (n_labels, E)
    return (index) => {
      const { char, label } = split(index);
      const x = NN.row(wte, char);
      return labelEmb ? NN.add(x, NN.row(labelEmb, label)) : x;
    };
  }

  const sigmoid1 = (v) => 1 / (1 + Math.exp(-v));

  // ------------------------------------------------------------------ recurrent models (torch.nn.RNN / GRU / LSTM)
  // The cells, per layer l (x: the embedding for l = 0, else layer l-1's new h), gates in PyTorch's row order of
  // weight_ih (gates*H, in) and weight_hh (gates*H, H):
  //   rnn:  h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
  //   gru:  (r, z, n): r = σ(..r), z = σ(..z), n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) n + z h
  //   lstm: (i, f, g, o): c' = σ(f) c + σ(i) tanh(g), h' = σ(o) tanh(c')
  // then logits = lm_head(h of the top layer): W (V, H) h + b.

  const CELLS = {
    rnn(gi, gh, h) {  // gi, gh: (H) each
      return { h: gi.map((v, j) => Math.tanh(v + gh[j])) };
    },
    gru(gi, gh, h) {  // gi, gh: (3H)
      const H = h.length, out = new Float64Array(H);
      for (let j = 0; j < H; j++) {
        const r = sigmoid1(gi[j] + gh[j]);
        const z = sigmoid1(gi[H + j] + gh[H + j]);
        const n = Math.tanh(gi[2 * H + j] + r * gh[2 * H + j]);
        out[j] = (1 - z) * n + z * h[j];
      }
      return { h: out };
    },
    lstm(gi, gh, h, c) {  // gi, gh: (4H)
      const H = h.length, hOut = new Float64Array(H), cOut = new Float64Array(H);
      for (let j = 0; j < H; j++) {
        const i = sigmoid1(gi[j] + gh[j]);
        const f = sigmoid1(gi[H + j] + gh[H + j]);
        const g = Math.tanh(gi[2 * H + j] + gh[2 * H + j]);
        const o = sigmoid1(gi[3 * H + j] + gh[3 * H + j]);
        cOut[j] = f * c[j] + i * g;
        hOut[j] = o * Math.tanh(cOut[j]);
      }
      return { h: hOut, c: cOut };
    },
  };

  function recurrent(cellName) {
    return (config, t) => {
      const cell = CELLS[cellName];
      const embed = embedder(config, t);
      const nLayer = config.n_layer ?? 1;
      const H = t("rnn.weight_hh_l0").shape[1];
      const layers = [];
      for (let l = 0; l < nLayer; l++) {
        layers.push({ Wih: t(`rnn.weight_ih_l${l}`), Whh: t(`rnn.weight_hh_l${l}`),  // (gates*H, in), (gates*H, H)
                      bih: t(`rnn.bias_ih_l${l}`), bhh: t(`rnn.bias_hh_l${l}`) });
      }
      const head = { W: t("lm_head.weight"), b: t("lm_head.bias") };  // (V, H), (V)

      // the zero state forward starts from: per layer {h (H), c (H) for the LSTM}
      const zeroState = () => layers.map(() => ({ h: new Float64Array(H), c: new Float64Array(H) }));
      // one position: the new state of every layer, and the logits (V) read from the top one
      const step = (state, index) => {
        let x = embed(index);  // (E)
        const next = layers.map((L, l) => {
          const s = cell(NN.Wx(L.Wih, x, L.bih), NN.Wx(L.Whh, state[l].h, L.bhh), state[l].h, state[l].c);
          x = s.h;  // (H): the next layer's input
          return s;
        });
        return { state: next, logits: NN.Wx(head.W, x, head.b) };
      };

      return {
        logits(seq) {  // PyTorch's forward at the last position: the whole item from a zero state
          let state = zeroState(), logits = null;
          for (const index of seq) ({ state, logits } = step(state, index));
          return logits;
        },
        stepper() {
          let state = zeroState();
          return { feed(index) { const s = step(state, index); state = s.state; return s.logits; } };
        },
      };
    };
  }

  MODELS.rnn = recurrent("rnn");
  MODELS.gru = recurrent("gru");
  MODELS.lstm = recurrent("lstm");

  // ------------------------------------------------------------------ transformer (GPT decoder, pre-norm blocks)
  // x_p = wte[char_p] + wpe[p] (+ label_emb[label_p]), p = 0.. over the last block_size positions; each block
  //   x += c_proj(attention(ln_1(x))),  attention: per head softmax(q k^T / sqrt(hs)) v over positions <= p
  //   x += c_proj(gelu(c_fc(ln_2(x))))   (exact GELU)
  // logits = lm_head(ln_f(x)) at the last position (no bias). Position p depends only on positions <= p, so the
  // window is read one position at a time with each layer's keys and values cached: the same numbers as forward.

  MODELS.transformer = (config, t) => {
    const embed = embedder(config, t);
    const wpe = t("wpe.weight");  // (block_size, C)
    const T = wpe.shape[0];  // block_size
    const C = wpe.shape[1], nh = config.n_head, hs = C / nh;
    const nLayer = config.n_layer;
    const eps = 1e-5;  // nn.LayerNorm's default
    const blocks = [];
    for (let l = 0; l < nLayer; l++) {
      const p = (name) => t(`blocks.${l}.${name}`);
      blocks.push({
        ln1: [p("ln_1.weight"), p("ln_1.bias")], ln2: [p("ln_2.weight"), p("ln_2.bias")],
        attn: [p("attn.c_attn.weight"), p("attn.c_attn.bias")],  // (3C, C), (3C): q, k, v of every head
        attnProj: [p("attn.c_proj.weight"), p("attn.c_proj.bias")],  // (C, C)
        fc: [p("mlp.c_fc.weight"), p("mlp.c_fc.bias")],  // (4C, C)
        proj: [p("mlp.c_proj.weight"), p("mlp.c_proj.bias")],  // (C, 4C)
      });
    }
    const lnF = [t("ln_f.weight"), t("ln_f.bias")], head = t("lm_head.weight");  // (V, C)

    // a cache: per layer the keys and values of the positions read, each (C) with the heads side by side
    const newCache = () => blocks.map(() => ({ keys: [], values: [] }));
    // read the next position (its number: positions already in the cache) -> logits (V)
    const step = (cache, index) => {
      const p = cache[0].keys.length;
      let x = NN.add(embed(index), NN.row(wpe, p));  // (C)
      blocks.forEach((B, l) => {
        const qkv = NN.Wx(B.attn[0], NN.layerNorm(x, ...B.ln1, eps), B.attn[1]);  // (3C)
        const { keys, values } = cache[l];
        keys.push(qkv.slice(C, 2 * C));
        values.push(qkv.slice(2 * C));
        const y = new Float64Array(C);  // (C): every head's weighted sum of values
        for (let h = 0; h < nh; h++) {
          const at = h * hs;
          const scores = keys.map((k) => {  // (p+1): q . k / sqrt(hs)
            let s = 0;
            for (let i = 0; i < hs; i++) s += qkv[at + i] * k[at + i];
            return s / Math.sqrt(hs);
          });
          const w = softmax(scores);
          values.forEach((v, j) => { for (let i = 0; i < hs; i++) y[at + i] += w[j] * v[at + i]; });
        }
        x = NN.add(x, NN.Wx(B.attnProj[0], y, B.attnProj[1]));
        const hidden = NN.gelu(NN.Wx(B.fc[0], NN.layerNorm(x, ...B.ln2, eps), B.fc[1]));  // (4C)
        x = NN.add(x, NN.Wx(B.proj[0], hidden, B.proj[1]));
      });
      return NN.Wx(head, NN.layerNorm(x, ...lnF, eps));
    };

    const logits = (seq) => {  // the last block_size positions, renumbered from 0
      const cache = newCache();
      let out = null;
      for (const index of seq.slice(-T)) out = step(cache, index);
      return out;
    };
    return {
      logits,
      stepper() {  // the cache while the item fits the position table, then the cropped window read again
        const cache = newCache(), seq = [];
        return { feed(index) { seq.push(index); return seq.length <= T ? step(cache, index) : logits(seq); } };
      },
    };
  };

  // ------------------------------------------------------------------ ensemble (a mixture of trained runs)
  // p(c | seq) = sum_m w_m softmax(logits_m(seq))_c; the logits returned are its log, log sum_m exp(log w_m +
  // log_softmax(logits_m)), as PyTorch's Mixture. Member m's tensors are the state dict's `members.<m>.*`, its
  // config the member's own with the ensemble's vocab_size and n_labels.

  MODELS.ensemble = (config, t) => {
    const shared = { vocab_size: config.vocab_size, n_labels: config.n_labels ?? 1 };
    const members = config.members.map((member, m) =>
      buildModel(member.model, { ...member.config, ...shared }, (name) => t(`members.${m}.${name}`)));
    const logWeights = config.weights.map(Math.log);

    const mix = (memberLogits) => {  // (M) arrays of (V) -> (V): log sum_m w_m p_m
      const parts = memberLogits.map((z, m) => logSoftmax(z).map((v) => v + logWeights[m]));
      return parts[0].map((_, c) => {
        let max = -Infinity;
        for (const part of parts) if (part[c] > max) max = part[c];
        if (max === -Infinity) return -Infinity;
        let sum = 0;
        for (const part of parts) sum += Math.exp(part[c] - max);
        return max + Math.log(sum);
      });
    };
    return {
      logits: (seq) => mix(members.map((member) => member.logits(seq))),
      stepper() {  // each member by its own stepper, or reading the item so far again
        const seq = [];
        const feeds = members.map((member) => {
          if (typeof member.stepper === "function") {
            const s = member.stepper();
            return (index) => s.feed(index);
          }
          return () => member.logits(seq);
        });
        return { feed(index) { seq.push(index); return mix(feeds.map((feed) => feed(index))); } };
      },
    };
  };
}
