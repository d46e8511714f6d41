#!/usr/bin/env bash
# Builds bench_gpt (if needed), runs it and its PyTorch peer (benchmarks/peers/torch_gpt.py),
# and prints the GPT training step (gpt<96, 64, 128, 4, 4, 512>, batch 16 × 64 tokens, AdamW)
# side by side at 1 and 2 threads, in tokens/s. ratio = ctdl tokens/s / PyTorch tokens/s;
# PyTorch's number is its best setting per thread count (named in the last column).
#
#   benchmarks/run_gpt.sh [build-dir] [extra Google Benchmark flags...]
#   ROUNDS=3 benchmarks/run_gpt.sh     # alternate ctdl and PyTorch 3 times, medians of rounds
#
# Env: REPS (Google Benchmark repetitions, default 5, the median is used), ROUNDS (default 1),
# TORCH_PYTHON (default /usr/bin/python3: Debian's python3-torch). The machine is shared and
# noisy: compare the ratios of one run, not absolute numbers across runs.
set -euo pipefail
NAME=gpt DEFAULT_REPS=5 source "$(dirname "$0")/rounds.sh" "$@"

python3 - "$tmp" <<'PY'
import glob, json, re, statistics, sys
tmp = sys.argv[1]
tokens = 16 * 64
ctdl, torch, setting = {}, {}, {}
for path in sorted(glob.glob(f"{tmp}/ctdl.*.json")):
    for b in json.load(open(path))["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        m = re.match(r"train/batch:(\d+)/threads:(\d+)", b["run_name"])
        if not m or b.get("error_occurred"):
            continue
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
        ctdl.setdefault(int(m[2]), []).append(int(m[1]) * 64 / (b["real_time"] * scale))
version = "?"
for path in sorted(glob.glob(f"{tmp}/torch.*.json")):
    d = json.load(open(path))
    version = d["torch"]
    for c in d["cases"]:
        torch.setdefault(c["threads"], []).append(d["tokens_per_step"] / (c["us"] * 1e-6))
        setting.setdefault(c["threads"], []).append(c["setting"])
target = 1.5
print(f"GPT gpt<96, 64, 128, 4, 4, 512> training step (batch 16 × 64 tokens, AdamW) float32; "
      f"ctdl vs PyTorch {version} eager (best setting); ratio = ctdl / PyTorch tokens/s")
print(f"{'threads':>7} {'ctdl tok/s':>11} {'PyTorch tok/s':>13} {'ratio':>7} {'target':>6}  PyTorch setting")
for t in sorted(set(ctdl) | set(torch)):
    c = statistics.median(ctdl[t]) if t in ctdl else None
    p = statistics.median(torch[t]) if t in torch else None
    ratio = c / p if c and p else None
    cs = f"{c:11.0f}" if c else "          -"
    ps = f"{p:13.0f}" if p else "            -"
    rs = f"{ratio:6.2f}×" if ratio else "      -"
    mark = "" if ratio is None else (" ok" if ratio >= target else " MISSED")
    names = sorted(set(setting.get(t, [])))
    print(f"{t:>7} {cs} {ps} {rs} {'≥1.5×':>6}{mark:>7}  {'; '.join(names)}")
PY
print_link
