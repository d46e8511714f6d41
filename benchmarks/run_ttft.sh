#!/usr/bin/env bash
# The time from exec to the first token of ctdl's statically specialized inference binaries
# (ctdl_add_inference_binary), with a warm and a cold page cache:
#   infer          examples/infer: the pretraining GPT, weights and tokenizer.json embedded (EMBED)
#   infer_mapped   the same model, its snapshot mapped at start
#   gpt2_embed     a GPT-2-small-shaped model (models::gpt2<50257, 1024, 768, 12, 12>, random
#                  weights saved by ctdl::save, ~500 MB) embedded
#   gpt2_mapped    the same, mapped
# Each run: --prompt-tokens (32 tokens) --max-new-tokens 1 --temperature 0 --stats; see
# benchmarks/ttft/measure.py for what is timed and how the cache is made cold.
#
#   benchmarks/run_ttft.sh <build-dir>
# <build-dir>: a ctdl build with the examples (configured here, Release, when it is not one);
# the GPT-2 binaries are built in <build-dir>/ttft, a project of their own
# (benchmarks/ttft/CMakeLists.txt), never part of ctdl's build or tests.
# Env: TTFT_RUNS (default 5), TTFT_COLD (fadvise: evict the binary's files, the default;
# drop: echo 3 > /proc/sys/vm/drop_caches, root only; none: warm only), TTFT_JOBS (build
# jobs, default 2), CTDL_THREADS (the binaries' threads; default all hardware threads).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
if [[ $# -ne 1 ]]; then
  echo "usage: benchmarks/run_ttft.sh <build-dir>" >&2
  exit 2
fi
build="$(mkdir -p "$1" && cd "$1" && pwd)"
jobs="${TTFT_JOBS:-2}"
cold="${TTFT_COLD:-fadvise}"
case "$cold" in
  fadvise|none) ;;
  drop)
    if ! (sync && echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then
      echo "run_ttft.sh: TTFT_COLD=drop: cannot write /proc/sys/vm/drop_caches (not root?)" >&2
      exit 2
    fi ;;
  *) echo "run_ttft.sh: TTFT_COLD must be fadvise, drop or none, not '$cold'" >&2; exit 2 ;;
esac

if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCTDL_BUILD_EXAMPLES=ON >/dev/null
fi
echo "== building infer, infer_mapped in $build" >&2
cmake --build "$build" --target infer infer_mapped -j "$jobs" >&2
echo "== building gpt2_embed, gpt2_mapped in $build/ttft" >&2
if [[ ! -f "$build/ttft/build.ninja" ]]; then
  cmake -S "$here/ttft" -B "$build/ttft" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCTDL_SOURCE_DIR="$root" >/dev/null
fi
cmake --build "$build/ttft" --target gpt2_embed gpt2_mapped -j "$jobs" >&2

infer_dir="$build/examples/infer"
prompt="$(seq -s, 1 32)"
ls -l "$infer_dir/infer" "$infer_dir/infer_mapped" "$build/ttft/gpt2_embed" "$build/ttft/gpt2_mapped" \
  "$infer_dir/pretrain_run/gpt.safetensors" "$build/ttft/gpt2.safetensors" >&2
echo "threads: ${CTDL_THREADS:-all hardware threads ($(nproc))}"
python3 "$here/ttft/measure.py" "${TTFT_RUNS:-5}" "$prompt" "$cold" \
  "infer=$infer_dir/infer" \
  "infer_mapped=$infer_dir/infer_mapped,$infer_dir/pretrain_run/gpt.safetensors" \
  "gpt2_embed=$build/ttft/gpt2_embed" \
  "gpt2_mapped=$build/ttft/gpt2_mapped,$build/ttft/gpt2.safetensors"
