#!/usr/bin/env bash
# Builds bench_mlp (if needed), runs it and its PyTorch peer (benchmarks/peers/torch_mlp.py),
# and prints the MLP 784-256-256-10 side by side: training step (batch 64, 256) and frozen
# inference (batch 1, 64) at 1 and 2 threads. speed-up = PyTorch time / ctdl time; PyTorch's
# time is its best setting per case (named in the last column).
#
#   benchmarks/run_mlp.sh [build-dir] [extra Google Benchmark flags...]
#   ROUNDS=3 benchmarks/run_mlp.sh     # alternate ctdl and PyTorch 3 times, medians of rounds
#
# Env: REPS (Google Benchmark repetitions, default 3, the median is used), ROUNDS (default 1),
# TORCH_PYTHON (default /usr/bin/python3: Debian's python3-torch). The machine is shared and
# noisy: compare the ratios of one run, not absolute numbers across runs.
set -euo pipefail
NAME=mlp DEFAULT_REPS=3 source "$(dirname "$0")/rounds.sh" "$@"

python3 - "$tmp" <<'PY'
import glob, json, re, statistics, sys
tmp = sys.argv[1]
ctdl, torch, setting = {}, {}, {}
for path in sorted(glob.glob(f"{tmp}/ctdl.*.json")):
    for b in json.load(open(path))["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        m = re.match(r"(\w+)/batch:(\d+)/threads:(\d+)", b["run_name"])
        if not m or b.get("error_occurred"):
            continue
        scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]
        ctdl.setdefault((m[1], int(m[2]), int(m[3])), []).append(b["real_time"] * scale)
version = "?"
for path in sorted(glob.glob(f"{tmp}/torch.*.json")):
    d = json.load(open(path))
    version = d["torch"]
    for c in d["cases"]:
        key = (c["case"], c["batch"], c["threads"])
        torch.setdefault(key, []).append(c["us"])
        setting.setdefault(key, []).append(c["setting"])
targets = {"train": 1.5, "infer": None}
print(f"MLP 784-256-256-10 float32; ctdl vs PyTorch {version} (best setting per case); "
      f"speed-up = PyTorch / ctdl")
print(f"{'case':>6} {'batch':>5} {'thr':>3} {'ctdl µs':>9} {'PyTorch µs':>10} {'speed-up':>8} {'target':>6}  PyTorch setting")
order = {"train": 0, "infer": 1}
for key in sorted(set(ctdl) | set(torch), key=lambda k: (order.get(k[0], 9), k[1], k[2])):
    case, batch, t = key
    c = statistics.median(ctdl[key]) if key in ctdl else None
    p = statistics.median(torch[key]) if key in torch else None
    target = 1.5 if case == "train" else (10.0 if batch == 1 else None)
    up = p / c if c and p else None
    cs = f"{c:9.1f}" if c else "        -"
    ps = f"{p:10.1f}" if p else "         -"
    us = f"{up:7.2f}×" if up else "       -"
    ts = f"≥{target:g}×" if target else ""
    mark = "" if up is None or target is None else (" ok" if up >= target else " MISSED")
    names = sorted(set(setting.get(key, [])))
    print(f"{case:>6} {batch:>5} {t:>3} {cs} {ps} {us} {ts:>6}{mark:>7}  {'; '.join(names)}")
PY
print_link
