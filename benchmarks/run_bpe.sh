#!/usr/bin/env bash
# Encode throughput, ctdl::data::bpe_tokenizer beside `tokenizers` (Python), one thread, on
# tests/golden/bpe_train.txt repeated to ~1 MB with tests/golden/bpe_tokenizer.json.
#   benchmarks/run_bpe.sh [PYTHON]      (PYTHON: one with `tokenizers`, default /work/venv/bin/python)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-/work/venv/bin/python}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
${CXX:-g++} -std=c++20 -O2 -DNDEBUG -I"$root/include" "$root/benchmarks/bpe_throughput.cpp" -o "$out/bpe_throughput"
json=$root/tests/golden/bpe_tokenizer.json
text=$root/tests/golden/bpe_train.txt
"$out/bpe_throughput" "$json" "$text" 1000000
if "$py" -c "import tokenizers" 2>/dev/null; then
  "$py" "$root/benchmarks/peers/tokenizers_bpe.py" "$json" "$text" 1000000
else
  echo "tokenizers: not installed for $py, skipped"
fi
