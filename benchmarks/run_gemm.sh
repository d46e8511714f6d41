#!/usr/bin/env bash
# Builds bench_gemm (if needed), runs it, and prints ctdl against OpenBLAS side by side.
#
#   benchmarks/run_gemm.sh [build-dir] [extra Google Benchmark flags...]
#
# OPENBLAS_CORETYPE is forced to the CPU's real kernel (SkylakeX with AVX-512, else Haswell
# with AVX2 + FMA; an OPENBLAS_CORETYPE already set wins): Debian's OpenBLAS 0.3.21 does not
# know Zen 5 and would fall back to a slow generic kernel. The machine is shared and
# noisy: compare the ratios of one run, not absolute numbers across runs. Each benchmark
# runs REPS times (default 3) and the table shows the best repetition of each.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
build="${1:-$root/build}"
shift || true

if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target bench_gemm core_link >/dev/null
link_before="$("$build/benchmarks/core_link")"

json="$(mktemp /tmp/bench_gemm.XXXXXX.json)"
trap 'rm -f "$json"' EXIT
if [[ -z "${OPENBLAS_CORETYPE:-}" ]]; then
  if grep -qw avx512f /proc/cpuinfo; then OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then OPENBLAS_CORETYPE=Haswell
  else OPENBLAS_CORETYPE=Prescott; fi
fi
echo "OpenBLAS kernel: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE" >&2
OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE "$build/benchmarks/bench_gemm" --benchmark_out="$json" --benchmark_out_format=json \
  --benchmark_repetitions="${REPS:-3}" "$@" >&2

python3 - "$json" <<'PY'
import json, re, sys
peak_per_core = 0.0  # fp32 GFLOP/s of one core, measured in this run (peak/fma: FMAs on registers only)
runs = {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("run_type") == "aggregate":
        continue
    if b["run_name"].startswith("peak/fma"):
        peak_per_core = max(peak_per_core, b["GFLOPS"])
        continue
    m = re.match(r"gemm/(\w+)/(\w+)/([0-9x]+)/threads:(\d+)", b["run_name"])
    if not m:
        continue
    lib, form, size, threads = m.groups()
    key = (size, form, int(threads), lib)
    runs[key] = max(runs.get(key, 0.0), b["GFLOPS"])  # best of the repetitions: least disturbed
names = {"nn": "C=A·B", "nt": "Y=X·Wᵀ", "tn": "dW=dYᵀ·X"}
keys = []
for (size, form, t, lib) in runs:
    if (size, form, t) not in keys:
        keys.append((size, form, t))
if peak_per_core:
    print(f"fp32 FMA peak of one core, measured: {peak_per_core:.1f} GFLOP/s (x threads for the %peak column)")
print(f"{'M x N x K':>16} {'form':>9} {'thr':>3} {'ctdl GF/s':>10} {'OpenBLAS':>9} {'ratio':>6} {'ctdl %peak':>10}")
for size, form, t in keys:
    c = runs.get((size, form, t, "ctdl"))
    o = runs.get((size, form, t, "openblas"))
    ratio = f"{c / o:6.2f}" if c and o else "     -"
    ostr = f"{o:9.1f}" if o else "        -"
    pct = f"{100 * c / (peak_per_core * t):9.1f}%" if peak_per_core else "         -"
    print(f"{size:>16} {names.get(form, form):>9} {t:>3} {c:10.1f} {ostr} {ratio} {pct}")
PY
echo "2-thread placement: before: ${link_before#core link: }; after: $("$build/benchmarks/core_link" | sed 's/core link: //')"
