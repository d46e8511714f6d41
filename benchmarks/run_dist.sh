#!/usr/bin/env bash
# Builds dist_pretrain (if needed) and runs the pretraining example's GPT (global batch 16 x 64
# tokens, AdamW) as 1 process x 2 threads and as 2 processes x 1 thread over Open MPI, and
# prints the table: tokens/s with and without the gradient buckets overlapped with the
# backward pass, the bytes summed per step, the wait left after backward and the share of
# the reduction the backward pass hid, from the smallest waits (benchmarks/dist_pretrain.cpp
# says what each is).
#
#   benchmarks/run_dist.sh [build-dir] [steps] [bucket KiB]     (defaults: build/release 20 1024)
#
# ROUNDS (default 3): the two configurations alternate that many times; medians of rounds.
# The machine is shared and noisy: compare the figures of one run, not across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release} steps=${2:-20} kib=${3:-1024} rounds=${ROUNDS:-3}
ninja -C "$build" dist_pretrain >/dev/null
bin="$build/benchmarks/dist_pretrain"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((r = 0; r < rounds; ++r)); do
  CTDL_THREADS=2 "$bin" "$steps" "$kib" | tee -a "$out" | grep -v RESULT
  mpirun -np 2 --oversubscribe --bind-to none -x CTDL_THREADS=1 "$bin" "$steps" "$kib" | tee -a "$out" | grep -v RESULT
done
python3 - "$out" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT"):
        d = dict(kv.split("=") for kv in line.split()[1:])
        rows.setdefault((d["processes"], d["threads"]), []).append({k: float(v) for k, v in d.items()})
print()
print(f"{'config':>20} {'tok/s':>8} {'tok/s no overlap':>16} {'bytes/step':>10} {'backward ms':>11} "
      f"{'wait ms':>8} {'wait no-ovl ms':>14} {'min wait':>8} {'no-ovl':>7} {'sum alone ms':>12} {'hidden':>7}")
for (p, t), rs in sorted(rows.items()):
    m = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
    hidden = f"{100 * (1 - m['min_wait_ms'] / m['min_wait_no_overlap_ms']):.0f}%" if p != "1" else "-"
    print(f"{p + ' proc x ' + t + ' thr':>20} {m['tokens_per_s']:8.0f} {m['tokens_per_s_no_overlap']:16.0f} "
          f"{m['bytes']:10.0f} {m['backward_ms']:11.2f} {m['wait_ms']:8.3f} {m['wait_no_overlap_ms']:14.3f} "
          f"{m['min_wait_ms']:8.3f} {m['min_wait_no_overlap_ms']:7.3f} "
          f"{m['allreduce_alone_ms']:12.3f} {hidden:>7}")
PY
