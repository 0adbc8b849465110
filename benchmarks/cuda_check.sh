#!/usr/bin/env bash
# Every command of makemore on a CUDA GPU, in one short script (about 5 minutes on one H200).
#
#   MAKEMORE_DATA=../shared/data bash benchmarks/cuda_check.sh [WORK_DIR]
#
# Runs, each on --device "$dev": reproduce (the essay's five, timed), train of every sequence model
# (short), eval on CUDA and on the CPU of a CUDA-trained run (the same NLL to float precision),
# the same seed trained twice (the same bits?), sample (plain, --most-likely, --suffix, --contains),
# cached against uncached decoding on CUDA (the same items?), score, score --explain, next, serve
# (the JSON API over HTTP), and torchrun with NCCL. Each step prints PASS or FAIL and its seconds;
# the last line counts the failures. Needs python3 with torch (CUDA), and the web extra for serve.
set -u
work=${1:-$(mktemp -d)}
dev=${DEVICE:-cuda}  # DEVICE=cpu STEPS=50 FULL=0: a dry run of the script itself, anywhere
steps=${STEPS:-600}
backend=$([ "$dev" = cuda ] && echo nccl || echo gloo)
mm() { python3 -m makemore "$@"; }
fails=0
step() {  # step NAME COMMAND...: run it, print PASS/FAIL with the wall time
    local name=$1; shift
    local t0=$SECONDS
    echo "=== $name"
    if "$@"; then echo "PASS $name ($((SECONDS - t0)) s)"; else echo "FAIL $name ($((SECONDS - t0)) s)"; fails=$((fails + 1)); fi
}

nvidia-smi -L 2>/dev/null; python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")'
export CUBLAS_WORKSPACE_CONFIG=:4096:8

step "reproduce (the essay's five)" mm reproduce -o "$work/essay" --device "$dev"
for m in rnn gru lstm transformer wavenet-conv; do
    step "train $m ($steps steps)" mm train -i names --model "$m" -o "$work/$m" --steps "$steps" --device "$dev" --no-plot
done
step "eval on $dev" mm eval "$work/transformer" --device "$dev"
step "eval on the CPU of a CUDA run" mm eval "$work/transformer" --device cpu
same_bits() {
    mm train -i names --model mlp-bn -o "$work/a" --steps 300 --seed 7 --device "$dev" --no-plot >/dev/null &&
    mm train -i names --model mlp-bn -o "$work/b" --steps 300 --seed 7 --device "$dev" --no-plot >/dev/null &&
    sha256sum "$work/a/model.safetensors" "$work/b/model.safetensors" &&
    cmp "$work/a/model.safetensors" "$work/b/model.safetensors"
}
step "same seed twice: same bits" same_bits
step "sample" mm sample "$work/transformer" -n 5 --seed 1 --device "$dev"
step "sample --most-likely" mm sample "$work/essay/wavenet" --most-likely 5 --format csv --device "$dev"
step "sample --suffix ella" mm sample "$work/transformer" -n 5 --suffix ella --seed 1 --device "$dev"
step "sample --contains qu --prefix a" mm sample "$work/lstm" -n 5 --contains qu --prefix a --seed 1 --device "$dev"
step "score" mm score "$work/essay/wavenet" emma xqzt --device "$dev"
step "score --explain" mm score "$work/transformer" --explain emma --device "$dev"
step "next" mm next "$work/gru" ka --device "$dev"
step "cached = uncached decoding" python3 - "$work" "$dev" <<'EOF'
# float32: the rates, and how many items agree (a draw that lands within rounding of a boundary goes the other
# way and, through the random stream, changes the rest of its batch); float64: every item must agree
import sys, time, torch
from makemore.training.run_folder import load_run
from makemore.generation.request import GenerateRequest
from makemore.generation.sampler import generate
bad = 0
sync = torch.cuda.synchronize if sys.argv[2] == 'cuda' else (lambda: None)
for name in ["rnn", "gru", "lstm", "transformer", "wavenet-conv"]:
    model, vocab, _ = load_run(f"{sys.argv[1]}/{name}", device=sys.argv[2])
    got = {}
    for cache in (False, True):
        generate(model, vocab, GenerateRequest(n=64, max_len=30, seed=0), cache=cache)  # warm-up
        sync(); t = time.perf_counter()
        items = generate(model, vocab, GenerateRequest(n=10_000, max_len=30, seed=3), cache=cache, batch_size=1024)
        sync(); got[cache] = (items, 10_000 / (time.perf_counter() - t))
    same = sum(a.item == b.item for a, b in zip(got[False][0], got[True][0]))
    lp = max(abs(a.log_prob - b.log_prob) for a, b in zip(got[False][0], got[True][0]) if a.item == b.item)
    model = model.double()
    exact = [generate(model, vocab, GenerateRequest(n=10_000, max_len=30, seed=3), cache=c, batch_size=1024) for c in (False, True)]
    same64 = sum(a.item == b.item for a, b in zip(*exact))
    print(f"{name:<13} items/s uncached {got[False][1]:>9,.0f} cached {got[True][1]:>9,.0f} | float32: same items "
          f"{same}/10000, max |dlogp| {lp:.1e} | float64: same items {same64}/10000")
    bad += same64 < 10_000
sys.exit(bad)
EOF
http() {  # http PATH [JSON]: GET, or POST the JSON; print the body, fail on an HTTP error (no curl needed)
    python3 -c 'import sys, urllib.request as u
r = u.Request("http://127.0.0.1:8765" + sys.argv[1], data=sys.argv[2].encode() if len(sys.argv) > 2 else None,
              headers={"content-type": "application/json"})
print(u.urlopen(r, timeout=60).read().decode()[:300])' "$@" 2>/dev/null
}
serve_api() {
    python3 -m makemore serve "$work/essay" "$work/transformer" --port 8765 --device "$dev" >"$work/serve.out" 2>"$work/serve.log" &
    local pid=$! ok=1
    for _ in $(seq 60); do http /api/health >/dev/null && break; sleep 1; done
    http /api/health && http /api/runs &&
    http /api/sample '{"run": "transformer", "n": 3, "seed": 1}' &&
    http /api/score '{"run": "transformer", "items": ["emma"]}' &&
    http /api/next '{"run": "transformer", "prefix": "ka"}' && ok=0
    kill $pid; wait $pid 2>/dev/null
    [ $ok = 0 ] || { tail -5 "$work/serve.log"; return 1; }
}
step "serve (JSON API over HTTP)" serve_api
nccl() {
    python3 -m torch.distributed.run --standalone --nproc-per-node 1 -m makemore train -i names --model transformer -o "$work/ddp" \
        --steps 300 --device "$dev" --no-plot &&
    python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print('backend', m.get('backend'), 'world_size', m.get('world_size')); sys.exit(m.get('backend') != sys.argv[2])" "$work/ddp/run.json" "$backend"
}
step "torchrun ($backend)" nccl
[ "${FULL:-1}" = 0 ] || step "train transformer, full fast recipe (timed)" mm train -i names --model transformer -o "$work/transformer-full" --device "$dev" --no-plot
echo "failures: $fails"
exit $fails
