# Sourced by run_mlp.sh and run_gpt.sh: builds bench_NAME (if needed) and runs it and its
# PyTorch peer (peers/torch_NAME.py) in alternating rounds, leaving ctdl.R.json and
# torch.R.json in $tmp for the caller's table, and link.txt: core_link's readings before
# each round and at the end (print_link shows them).
#
#   NAME=mlp DEFAULT_REPS=3 source rounds.sh "$@"      # "$@": [build-dir] [Google Benchmark flags...]
#
# Env: REPS (Google Benchmark repetitions), ROUNDS (default 1), TORCH_PYTHON (default
# /usr/bin/python3: Debian's python3-torch).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
build="${1:-$root/build}"
shift || true
torch_python="${TORCH_PYTHON:-/usr/bin/python3}"

if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target "bench_$NAME" core_link >/dev/null

tmp="$(mktemp -d "/tmp/bench_$NAME.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
for ((r = 1; r <= ${ROUNDS:-1}; r++)); do
  echo "== round $r: ctdl" >&2
  "$build/benchmarks/core_link" >>"$tmp/link.txt"
  "$build/benchmarks/bench_$NAME" --benchmark_out="$tmp/ctdl.$r.json" --benchmark_out_format=json \
    --benchmark_repetitions="${REPS:-$DEFAULT_REPS}" --benchmark_report_aggregates_only=true "$@" >&2
  echo "== round $r: PyTorch" >&2
  if ! "$torch_python" "$here/peers/torch_$NAME.py" >"$tmp/torch.$r.json"; then
    echo "run_$NAME.sh: the PyTorch peer failed (is python3-torch installed for $torch_python?)" >&2
    rm -f "$tmp/torch.$r.json"
  fi
done
"$build/benchmarks/core_link" >>"$tmp/link.txt"

# Prints the core_link readings of this run (how far apart the two CPUs were placed).
print_link() {
  echo "2-thread placement, $(sort -u "$tmp/link.txt" | sed 's/core link: //' | paste -sd ';' -)"
  echo "(~80 ns: the host placed both CPUs near each other; 200-600 ns: apart, and 2-thread figures drop; see benchmarks/core_link.cpp)"
}
