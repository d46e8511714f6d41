#!/usr/bin/env bash
# Builds bench_finetune (if needed), runs it and its PyTorch + peft peer (benchmarks/peers/
# peft_step.py), and prints one fine-tuning step (forward, cross-entropy, backward, AdamW lr
# 1e-4) side by side, with LoRA (rank 8, alpha 16, on the attention projections) and with full
# fine-tuning, for the pretraining example's GPT (batch 16 × 64 tokens) and GPT-2 small's shape
# (batch 1 × 256 tokens): tokens/s at 1 and 2 threads and at each side's best thread count,
# ratio = ctdl / PyTorch tokens/s (PyTorch's best setting per row, named in the last column),
# and the bytes of gradients and optimizer state each keeps.
#
#   benchmarks/run_finetune.sh [build-dir] [extra Google Benchmark flags...]
#   ROUNDS=3 benchmarks/run_finetune.sh build/bench    # alternate ctdl and PyTorch 3 times
#
# ctdl and PyTorch run in alternating rounds (ROUNDS, default 2): the machine's load changes
# within minutes, and a side measured in a quiet minute would otherwise win by it. Each figure
# is the median of the rounds (ctdl's per round: the median of its REPS repetitions; PyTorch's
# per round: its best setting); the per-thread rows also give each round's ratio.
# Env: REPS (Google Benchmark repetitions, default 3, the median is used), PEFT_PYTHON (default
# /work/venv/bin/python: PyPI torch + peft + transformers; Debian's python3-torch 1.13 has no
# peft), PEFT_ARGS (more flags for peft_step.py, e.g. "--forms eager" for a quicker run). A
# round takes ~15 min here. The machine is shared and noisy: compare the ratios of one
# run, and read the load averages printed with the table.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
build="${1:-$root/build}"
shift || true
if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target bench_finetune >/dev/null
tmp="$(mktemp -d /tmp/bench_finetune.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
# The peer's grid: peft_step.py's whole grid was swept once (its docstring has the results);
# the settings that never won there are left out by default (MKL's own code path on this AMD
# CPU, the pretraining GPT's written-out attention, adamw foreach). PEFT_ARGS come last, so
# they can widen it again ("--mkl vendor,intel ...").
peer() {  # peer ROUND NAME FLAGS...
  local round=$1 name=$2
  shift 2
  # shellcheck disable=SC2086  # PEFT_ARGS is a list of flags
  if ! (cd "$here/peers" && "${PEFT_PYTHON:-/work/venv/bin/python}" peft_step.py "$@" ${PEFT_ARGS:-} \
    >"$tmp/peft.$name.$round.json"); then
    echo "run_finetune.sh: the PyTorch + peft peer failed for $name (are torch, peft and transformers installed" \
      "for ${PEFT_PYTHON:-/work/venv/bin/python}?)" >&2
    rm -f "$tmp/peft.$name.$round.json"
  fi
}
load() { echo "$1 $(cut -d' ' -f1 /proc/loadavg)" >>"$tmp/load.txt"; }
grid=(--mkl intel --optimizers loop,fused)
# The FMA peak of one core, in the same run (bench_gemm's peak/fma: FMAs on registers only), at
# the start and the end; the table's GFLOP/s and bound columns use the higher.
peak() { "$build/benchmarks/bench_gemm" --benchmark_filter='^peak/fma' --benchmark_format=json 2>/dev/null >"$tmp/peak.$1.json" || true; }
cmake --build "$build" --target bench_gemm >/dev/null
peak start
for ((r = 1; r <= ${ROUNDS:-2}; r++)); do
  echo "== round $r: ctdl" >&2
  load "round $r: ctdl"
  "$build/benchmarks/bench_finetune" --benchmark_out="$tmp/ctdl.$r.json" --benchmark_out_format=json \
    --benchmark_repetitions="${REPS:-3}" --benchmark_report_aggregates_only=true "$@" >&2
  echo "== round $r: PyTorch + peft" >&2
  load "PyTorch"
  peer "$r" pretrain --models pretrain --attention sdpa "${grid[@]}"
  peer "$r" gpt2 --models gpt2 --attention sdpa,eager "${grid[@]}"
done
load "end"
peak end

python3 - "$tmp" <<'PY'
import glob, json, re, sys
tmp = sys.argv[1]
# Per round: ctdl's median of its repetitions, PyTorch's best setting; then the median of the
# rounds (with the setting that was best most often).
rounds_c, rounds_p = {}, {}
for path in sorted(glob.glob(f"{tmp}/ctdl.*.json")):
    for b in json.load(open(path))["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        m = re.match(r"finetune/(\w+)_(lora|full)/threads:(\d+)", b["run_name"])
        if not m or b.get("error_occurred"):
            continue
        rounds_c.setdefault((m[1], m[2], int(m[3])), []).append(b)
version = "PyTorch (peer failed)"
for path in sorted(glob.glob(f"{tmp}/peft.*.json")):
    try:
        d = json.load(open(path))
    except (OSError, ValueError):
        continue
    version = f"PyTorch {d['torch']} + peft {d['peft']} (transformers {d['transformers']})"
    best = {}
    for c in d["cases"]:
        k = (c["model"], c["mode"], c["threads"])
        if k not in best or c["tok_s"] > best[k]["tok_s"]:
            best[k] = c
    for k, c in best.items():
        rounds_p.setdefault(k, []).append(c)

def median_case(cases):
    in_order = [x["tok_s"] for x in cases]
    cases = sorted(cases, key=lambda c: c["tok_s"])
    c = dict(cases[(len(cases) - 1) // 2])
    if len(cases) % 2 == 0:
        c["tok_s"] = (c["tok_s"] + cases[len(cases) // 2]["tok_s"]) / 2
    if "setting" in c:
        names = [x["setting"] for x in cases]
        c["setting"] = max(set(names), key=names.count)
    c["rounds"] = in_order
    return c

ctdl = {k: median_case(v) for k, v in rounds_c.items()}
peer = {k: median_case(v) for k, v in rounds_p.items()}
nrounds = max([len(v) for v in rounds_c.values()] + [0])
loads = [l.rsplit(" ", 1) for l in open(f"{tmp}/load.txt").read().splitlines()]
shapes = {"pretrain": "examples::pretrain_gpt = gpt<1024, 64, 128, 4, 4, 512>, batch 16 × 64 tokens",
          "gpt2": "gpt2<50257, 1024, 768, 12, 12> (GPT-2 small's shape), batch 1 × 256 tokens"}
print(f"Fine-tuning step (forward, cross-entropy, backward, AdamW lr 1e-4), float32: ctdl vs {version}")
for name, s in shapes.items():
    print(f"  {name:8}  {s}")
print("  lora: rank 8, alpha 16 on the attention projections (qkv, proj / attn.c_attn, attn.c_proj), "
      "everything else frozen; full: every parameter trains")
print(f"{nrounds} round(s), ctdl then PyTorch in each; figures are medians of the rounds. 1-minute load average at: "
      + ", ".join(f"{what} {value}" for what, value in loads))
print()
print(f"{'model':>8} {'mode':>4} {'threads':>7} {'ctdl tok/s':>10} {'PyTorch tok/s':>13} {'ratio':>7} {'target':>6}"
      f"       PyTorch setting")
models = [m for m in shapes if any(k[0] == m for k in ctdl) or any(k[0] == m for k in peer)]
for model in models:
    for mode in ("lora", "full"):
        rows = []
        for t in (1, 2):
            c, p = ctdl.get((model, mode, t)), peer.get((model, mode, t))
            by_round = ""
            if c and p and len(c["rounds"]) > 1:
                by_round = "rounds " + " ".join(f"{a / b:.2f}×" for a, b in zip(c["rounds"], p["rounds"])) + "; "
            rows.append((str(t), c["tok_s"] if c else None, p["tok_s"] if p else None,
                         by_round + (p["setting"] if p else "")))
        # each side at its best thread count
        cs = [(c["tok_s"], t) for (m, md, t), c in ctdl.items() if (m, md) == (model, mode)]
        ps = [(p["tok_s"], t, p["setting"]) for (m, md, t), p in peer.items() if (m, md) == (model, mode)]
        cb, pb = max(cs) if cs else None, max(ps) if ps else None
        rows.append((f"best", cb[0] if cb else None, pb[0] if pb else None,
                     (f"ctdl {cb[1]}T; " if cb else "") + (f"PyTorch {pb[1]}T: {pb[2]}" if pb else "")))
        for label, c, p, setting in rows:
            ratio = c / p if c and p else None
            target = "≥1.5×" if mode == "lora" else ""
            mark = "" if ratio is None or mode != "lora" else (" ok" if ratio >= 1.5 else " MISSED")
            print(f"{model:>8} {mode:>4} {label:>7} " + (f"{c:10.1f}" if c else f"{'-':>10}") + " " +
                  (f"{p:13.1f}" if p else f"{'-':>13}") + " " + (f"{ratio:6.2f}×" if ratio else f"{'-':>7}") +
                  f" {target:>6}{mark:>7}  {setting}")
print()

# Arithmetic of one step, counted from the shapes (multiply-adds x 2): the linear layers and the
# LM head (2·in·out per token each way), causal attention (QKᵀ and PV over the t+1 earlier
# positions: 2·2·D·(T+1)/2 per token per layer). Forward: all of it. Backward, full: dX and
# dW of every linear and the head, and 2x the attention forward. Backward, LoRA: only dX of the
# frozen bases and head (no dW), 2x attention, and the adapters' own products (A: in->r,
# B: r->out, forward once and backward twice).
geometry = {"pretrain": dict(V=1024, T=64, D=128, L=4, F=512, rows=16, adapted=lambda D: [(D, 3 * D), (D, D)]),
            "gpt2": dict(V=50257, T=256, D=768, L=12, F=3072, rows=1, adapted=lambda D: [(D, 3 * D), (D, D)])}
def step_flop(model, mode, r=8):
    g = geometry[model]
    D, F, L, V, T = g["D"], g["F"], g["L"], g["V"], g["T"]
    lin = L * 2 * (D * 3 * D + D * D + D * F + F * D) + 2 * D * V   # per token, forward
    att = L * 2 * 2 * D * (T + 1) / 2
    ada = L * sum(2 * r * (i + o) for i, o in g["adapted"](D)) if mode == "lora" else 0
    fwd = lin + att + ada
    bwd = (2 * lin if mode == "full" else lin) + 2 * att + 2 * ada
    return (fwd + bwd) * T * g["rows"], T * g["rows"]
peaks = []
for path in glob.glob(f"{tmp}/peak.*.json"):
    try:
        peaks += [b["GFLOPS"] for b in json.load(open(path))["benchmarks"] if b["run_name"].startswith("peak/fma")]
    except (OSError, ValueError, KeyError):
        pass
peak = max(peaks, default=0.0)
if peak:
    print(f"Arithmetic: FLOP per step counted from the shapes; fp32 FMA peak of one core measured in this run: "
          f"{peak:.1f} GFLOP/s (start and end: {', '.join(f'{p:.1f}' for p in sorted(peaks))}).")
    print("bound: the ratio ctdl would reach at the FMA peak of its threads, against PyTorch as measured "
          "(peak x threads / PyTorch's GFLOP/s), for each side at its best thread count.")
    print(f"{'model':>8} {'mode':>4} {'GFLOP/step':>10} {'ctdl GF/s':>10} {'%peak':>6} {'PyTorch GF/s':>12} "
          f"{'%peak':>6} {'bound':>7}")
    for model in models:
        for mode in ("lora", "full"):
            cs = [(c["tok_s"], t) for (m, md, t), c in ctdl.items() if (m, md) == (model, mode)]
            ps = [(p["tok_s"], t) for (m, md, t), p in peer.items() if (m, md) == (model, mode)]
            if not cs:
                continue
            flop, tokens = step_flop(model, mode)
            (ct, cth), pb = max(cs), (max(ps) if ps else None)
            cg = flop / tokens * ct / 1e9
            line = f"{model:>8} {mode:>4} {flop / 1e9:10.2f} {cg:10.1f} {100 * cg / (peak * cth):5.0f}%"
            if pb:
                pg = flop / tokens * pb[0] / 1e9
                bound = peak * cth / pg
                line += f" {pg:12.1f} {100 * pg / (peak * pb[1]):5.0f}% {bound:6.2f}×"
                line += f"   (ctdl {cth}T, PyTorch {pb[1]}T; at 2 threads: {2 * peak / pg:.2f}×)"
            print(line)
    print()

def mb(x, w=13):
    return f"{int(x):>{w},}"

print("Bytes of gradients and optimizer state after a step. ctdl: the model's own gradient buffer "
      "(model::gradient_bytes()) and adamw's state_tensors() (exp_avg, exp_avg_sq);")
print("  under LoRA the output layer is frozen, so model::backward_step writes the gradients into the step's "
      "dL/dlogits buffer, dead by then (both sides hold that buffer: activation storage).")
print("PyTorch: every p.grad, and every tensor in opt.state (exp_avg, exp_avg_sq, and a 4-byte 'step' per "
      "parameter tensor). adapters: the lora_A / lora_B parameters themselves.")
print(f"{'model':>8} {'mode':>4} {'ctdl grad':>13} {'ctdl state':>13} {'ctdl sum':>13} {'torch grad':>13} "
      f"{'torch state':>13} {'torch sum':>13} {'adapters':>11} {'adapters×2':>11}")
checks = []
for model in models:
    for mode in ("lora", "full"):
        c = next((ctdl[k] for k in sorted(ctdl) if k[:2] == (model, mode)), None)
        p = next((peer[k] for k in sorted(peer) if k[:2] == (model, mode)), None)
        if not c:
            continue
        g, s, a, n = c["grad_bytes"], c["state_bytes"], c["adapter_bytes"], int(c["state_count"])
        pg = mb(p["grad_bytes"]) if p else f"{'-':>13}"
        pst = mb(p["state_bytes"]) if p else f"{'-':>13}"
        psum = mb(p["grad_bytes"] + p["state_bytes"]) if p else f"{'-':>13}"
        print(f"{model:>8} {mode:>4} {mb(g)} {mb(s)} {mb(g + s)} {pg} {pst} {psum} " +
              (f"{mb(a, 11)} {mb(n * a, 11)}" if mode == "lora" else f"{'-':>11} {'-':>11}"))
        if mode == "lora":
            checks.append((model, g, s, a, n, c.get("grad_in_dout_bytes", 0), c.get("dout_bytes", 0)))
        if mode == "full" and p and p["grad_bytes"] != g:  # every parameter trains: the same count on both sides
            print(f"  WARNING: {model}: the two sides' models differ ({g // 4:,} parameters in ctdl, "
                  f"{p['grad_bytes'] // 4:,} in PyTorch); the ratios above compare different work")
print("ctdl also keeps copies of the frozen weights on a gradient path in the GEMMs' panel layout, made once per "
      "change of the frozen parameters (ops/linear/frozen_packs.hpp): pack bytes, not gradient or optimizer state:")
for model in models:
    for mode in ("lora", "full"):
        c = next((ctdl[k] for k in sorted(ctdl) if k[:2] == (model, mode)), None)
        if c and "pack_bytes" in c:
            print(f"  {model:8} {mode:4}: {c['pack_bytes'] / 1e6:9.1f} MB  ({c['pack_bytes'] / (4 * c['params']):.2f} × "
                  f"the parameters' {4 * c['params'] / 1e6:.1f} MB)")
print()
print("Memory target, \"LoRA memory for gradients and optimizer state <= the adapters' size × the optimizer's "
      "state count (2 for AdamW)\":")
for model, g, s, a, n, gd, d in checks:
    print(f"  {model:8}: optimizer state {s / a:.2f} × adapters <= {n} × : {'holds' if s <= n * a else 'MISSED'};"
          f"  gradient + optimizer state {(g + s) / a:.2f} × adapters <= {n} × : "
          f"{'holds' if g + s <= n * a else 'MISSED (the gradient is one more adapter-sized buffer)'}")
    if gd:
        print(f"            the gradients ({int(gd):,} bytes) lived in the dL/dlogits buffer ({int(d):,} bytes, "
              f"{100 * gd / d:.1f}% of it), which the step holds anyway")
PY
