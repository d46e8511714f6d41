#!/usr/bin/env bash
# Builds bench_decode (if needed), runs it and its transformers peer (benchmarks/peers/hf_decode.py)
# and prints batch-1 greedy generation (prefill 32 tokens, then 128 new) side by side, for the
# pretraining example's GPT shape (context 160) and GPT-2 small's, at 1 and 2 threads:
# decode tokens/s, prefill ms, ratio = ctdl / transformers' best form (eager, static cache,
# static cache + torch.compile) at the same thread count, and ctdl's decode rate as a share of
# the memory-bandwidth bound measured in the same run (read bandwidth / weight bytes per token).
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
echo "== transformers" >&2
"${HF_PYTHON:-/work/venv/bin/python}" "$here/peers/hf_decode.py" "${HF_MODELS:-all}" "${HF_SETTINGS:-eager,static,compile}" \
  >"$tmp/hf.json" || echo "run_decode.sh: the transformers peer failed" >&2

python3 - "$tmp" <<'PY'
import json, re, sys
tmp = sys.argv[1]
ctdl, bw, batch8 = {}, {}, {}
for b in json.load(open(f"{tmp}/ctdl.json"))["benchmarks"]:
    m = re.match(r"(decode/(\w+)|read_bw)/threads:(\d+)", b["run_name"])
    if not m or b.get("error_occurred"):
        continue
    t = int(m[3])
    if m[1] == "read_bw":
        bw[t] = b["read_gb_s"]
    else:
        ctdl[(m[2], t)] = b
    if m[2] and m[2].endswith("_batch8"):
        batch8[(m[2][:-7], t)] = b["decode_tok_s"]
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
print(f"Batch-1 greedy generation, prefill 32 + 128 new tokens, float32; ctdl vs {version} (best form)")
print(f"read bandwidth (same run): " + ", ".join(f"{t} thread(s) {bw[t]:.1f} GB/s" for t in sorted(bw)))
print(f"{'model':>6} {'thr':>3} {'ctdl tok/s':>10} {'HF tok/s':>9} {'ratio':>7} {'ctdl prefill':>12} {'HF prefill':>10}"
      f" {'MB/token':>8} {'bound tok/s':>11} {'of bound':>8}  HF form")
for (model, t) in sorted(ctdl):
    if model.endswith("_batch8"):
        continue
    c = ctdl[(model, t)]
    h = hf.get((model, t))
    rate = c["decode_tok_s"]
    bound = bw.get(t, 0) * 1e3 / c["weight_mb"] if c["weight_mb"] else 0
    ratio = f"{rate / h['decode_tok_s']:6.2f}x" if h else "      -"
    hr = f"{h['decode_tok_s']:9.1f}" if h else "        -"
    hp = f"{h['prefill_ms']:8.2f}ms" if h else "         -"
    print(f"{model:>6} {t:>3} {rate:10.1f} {hr} {ratio} {c['prefill_ms']:10.2f}ms {hp} {c['weight_mb']:8.1f}"
          f" {bound:11.1f} {100 * rate / bound if bound else 0:7.0f}%  {h['setting'] if h else ''}")
print("batched generation (8 sequences in one session, one step for all): ctdl tokens/s over the 8, against batch 1")
for (model, t) in sorted(batch8):
    one = ctdl.get((model, t), {}).get("decode_tok_s")
    print(f"{model:>6} {t:>3} threads: batch 8 {batch8[(model, t)]:10.1f} tok/s" +
          (f", batch 1 {one:10.1f} tok/s, {batch8[(model, t)] / one:5.2f}x" if one else ""))
PY
