#!/usr/bin/env bash
# Builds bench_decode (if needed), runs it and its transformers peer (benchmarks/peers/hf_decode.py)
# and prints batch-1 greedy generation (prefill 32 tokens, then 128 new) side by side, for the
# pretraining example's GPT shape (context 160) and GPT-2 small's, at 1 and 2 threads:
# decode tokens/s, prefill ms, ratio = ctdl / transformers' best form (eager, static cache,
# static cache + torch.compile) at the same thread count, and ctdl's decode rate as a share of
# the memory-bandwidth bound measured in the same run (read bandwidth / weight bytes per token).
# Then the same sessions with bf16 weights (infer::bf16_decoder) against float32: tokens/s and
# their ratio, weight bytes per token and the share of the bound, top-1 agreement with
# float32's greedy tokens, the sessions' memory; and batch 8 against batch 1 for both.
#
#   benchmarks/run_decode.sh [build-dir] [extra Google Benchmark flags...]
# Env: HF_PYTHON (default /work/venv/bin/python: PyPI torch + transformers), HF_SETTINGS
# (default eager,static,compile), HF_MODELS (default all). The machine is shared and noisy:
# compare the ratios of one run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
build="${1:-$root/build}"
shift || true
if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target bench_decode >/dev/null
tmp="$(mktemp -d /tmp/bench_decode.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
echo "== ctdl" >&2
"$build/benchmarks/bench_decode" --benchmark_out="$tmp/ctdl.json" --benchmark_out_format=json "$@" >&2
# The read bandwidth again after the decoding runs (the machine is shared; the higher is used).
"$build/benchmarks/bench_decode" --benchmark_filter='^read_bw' --benchmark_out="$tmp/bw_end.json" \
  --benchmark_out_format=json >&2
for m in small gpt2; do for w in f32 bf16; do
  CTDL_THREADS=1 "$build/benchmarks/bench_decode" --session-memory $m $w >>"$tmp/memory.jsonl"
done; done
echo "== transformers" >&2
"${HF_PYTHON:-/work/venv/bin/python}" "$here/peers/hf_decode.py" "${HF_MODELS:-all}" "${HF_SETTINGS:-eager,static,compile}" \
  >"$tmp/hf.json" || echo "run_decode.sh: the transformers peer failed" >&2

python3 - "$tmp" <<'PY'
import json, re, sys
tmp = sys.argv[1]
# ctdl[(model, weights, batch, threads)]: decode/<model>[_bf16][_batch8]/threads:<t>
ctdl, bw, bw_runs = {}, {}, {}
for b in json.load(open(f"{tmp}/ctdl.json"))["benchmarks"] + json.load(open(f"{tmp}/bw_end.json"))["benchmarks"]:
    if b.get("error_occurred"):
        continue
    m = re.match(r"read_bw/threads:(\d+)(/|$)", b["run_name"])
    if m:
        bw[int(m[1])] = max(bw.get(int(m[1]), 0.0), b["read_gb_s"])
        bw_runs.setdefault(int(m[1]), []).append(b["read_gb_s"])
        continue
    m = re.match(r"decode/([a-z0-9]+?)(_bf16)?(_batch8)?/threads:(\d+)(/|$)", b["run_name"])
    if m:
        ctdl[(m[1], "bf16" if m[2] else "f32", 8 if m[3] else 1, int(m[4]))] = b
hf, version = {}, "?"
try:
    d = json.load(open(f"{tmp}/hf.json"))
    version = f"transformers {d['transformers']}, torch {d['torch']}"
    for c in d["cases"]:
        k = (c["model"], c["threads"])
        if k not in hf or c["decode_tok_s"] > hf[k]["decode_tok_s"]:
            hf[k] = c
except (OSError, ValueError):
    pass
def bound(c, t):
    return bw.get(t, 0) * 1e3 / c["weight_mb"] if c["weight_mb"] else 0
cases = sorted({(m, t) for (m, w, b, t) in ctdl if w == "f32" and b == 1})
print(f"Batch-1 greedy generation, prefill 32 + 128 new tokens, float32; ctdl vs {version} (best form)")
print(f"read bandwidth (same run, the higher of before and after): " +
      ", ".join(f"{t} thread(s) {bw[t]:.1f} GB/s ({' / '.join(f'{v:.1f}' for v in bw_runs[t])})" for t in sorted(bw)))
print(f"{'model':>6} {'thr':>3} {'ctdl tok/s':>10} {'HF tok/s':>9} {'ratio':>7} {'ctdl prefill':>12} {'HF prefill':>10}"
      f" {'MB/token':>8} {'bound tok/s':>11} {'of bound':>8}  HF form")
for (model, t) in cases:
    c = ctdl[(model, "f32", 1, t)]
    h = hf.get((model, t))
    rate, bd = c["decode_tok_s"], bound(c, t)
    ratio = f"{rate / h['decode_tok_s']:6.2f}x" if h else "      -"
    hr = f"{h['decode_tok_s']:9.1f}" if h else "        -"
    hp = f"{h['prefill_ms']:8.2f}ms" if h else "         -"
    print(f"{model:>6} {t:>3} {rate:10.1f} {hr} {ratio} {c['prefill_ms']:10.2f}ms {hp} {c['weight_mb']:8.1f}"
          f" {bd:11.1f} {100 * rate / bd if bd else 0:7.0f}%  {h['setting'] if h else ''}")
print("bf16 weights (infer::bf16_decoder: linear and head weights in bf16, widened to float in the kernel) "
      "against float32, same run;")
print("  top-1: fraction of the 128 new positions where bf16's argmax is float32's greedy token, both fed "
      "float32's sequence; prefix: new tokens of bf16's own greedy run equal to float32's before the first difference")
print(f"{'model':>6} {'thr':>3} {'f32 tok/s':>9} {'bf16 tok/s':>10} {'bf16/f32':>8} {'f32 MB/tok':>10} {'bf16 MB/tok':>11}"
      f" {'bf16 bound':>10} {'of bound':>8} {'top-1':>6} {'prefix':>6} {'f32 prefill':>11} {'bf16 prefill':>12}")
for (model, t) in cases:
    f, h = ctdl[(model, "f32", 1, t)], ctdl.get((model, "bf16", 1, t))
    if not h:
        continue
    bd = bound(h, t)
    print(f"{model:>6} {t:>3} {f['decode_tok_s']:9.1f} {h['decode_tok_s']:10.1f} {h['decode_tok_s'] / f['decode_tok_s']:7.2f}x"
          f" {f['weight_mb']:10.1f} {h['weight_mb']:11.1f} {bd:10.1f} {100 * h['decode_tok_s'] / bd if bd else 0:7.0f}%"
          f" {100 * h['top1_agree']:5.1f}% {int(h['same_prefix']):6d} {f['prefill_ms']:9.2f}ms {h['prefill_ms']:10.2f}ms")
print("memory, batch-1 session (fresh process each: resident memory the frozen model added, then the session after"
      " prefill + 127 steps: its packs, KV cache and buffers):")
mem = {}
try:
    for line in open(f"{tmp}/memory.jsonl"):
        r = json.loads(line)
        mem[(r["model"], r["weights"])] = r
except (OSError, ValueError):
    pass
for model in sorted({m for (m, w) in mem}):
    parts = [f"model {mem[(model, w)]['model_mb']:7.1f} MB; {w} session {mem[(model, w)]['session_mb']:7.1f} MB "
             f"(packs {mem[(model, w)]['packs_mb']:7.1f} MB)" for w in ("f32", "bf16") if (model, w) in mem]
    print(f"{model:>6}: " + "; ".join(parts))
print("batched generation (8 sequences in one session, one step for all): ctdl tokens/s over the 8, against batch 1")
for (model, w, b, t) in sorted(ctdl):
    if b != 8:
        continue
    r8 = ctdl[(model, w, 8, t)]["decode_tok_s"]
    one = ctdl.get((model, w, 1, t), {}).get("decode_tok_s")
    print(f"{model:>6} {w:>4} {t:>3} threads: batch 8 {r8:10.1f} tok/s" +
          (f", batch 1 {one:10.1f} tok/s, {r8 / one:5.2f}x" if one else ""))
PY
